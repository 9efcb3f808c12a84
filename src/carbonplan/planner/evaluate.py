"""One evaluator for every plan: the planner's and every baseline policy's.

It scores a `Schedule` on an `Instance` with the same cost functions the planner optimizes
(`columns.price_columns`): $ (rental + energy + expected spot rework), tCO2e (operational with PUE,
plus embodied), the objective, deadline misses, unplanned jobs, and violations of pool capacity,
site power caps, the carbon budget, release times and frozen placements.

Objective = sum over planned jobs of their column objective (incl. move penalties)
          + unplanned penalty (+ move penalty if announced) for every unplanned job
          + unplanned penalty for every planned job that ends after its deadline (a miss).

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonplan.planner.columns import ColumnCosts, Schedule
from carbonplan.planner.costs import CostCoefficients, build_cost_coefficients
from carbonplan.planner.instance import Instance
from carbonplan.planner.prepare import schedule_costs, usage_of
from carbonplan.planner.windows import build_windows

TOL = 1e-6


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Scores of one schedule. Money in $, emissions in tCO2e, energy in kWh."""

    objective: float
    cost_usd: float           # rental + energy + expected rework $ of planned jobs
    t_co2e: float             # operational + embodied
    t_operational: float
    t_embodied: float
    energy_kwh: float
    move_usd: float           # stability penalties paid
    penalty_usd: float        # unplanned and deadline-miss penalties
    n_planned: int
    n_unplanned: int
    n_late: int               # planned jobs ending after their deadline
    n_early: int              # planned jobs starting before their release
    n_invalid: int            # wrong pool, too few slots, a pause in a non-pausable job
    n_spot_unsafe: int        # spot placements that break the deadline-safety rule
    n_frozen_moved: int       # frozen jobs not at their fixed placement
    capacity_violations: int  # (pool, slot) cells over capacity
    capacity_excess: float    # largest excess, units
    power_violations: int     # (site, slot) cells over the power cap
    power_excess_kw: float
    budget_excess_t: float    # tCO2e above the carbon budget (0 if none)
    per_job: ColumnCosts      # (J,) cost parts per job (zeros if unplanned)
    late: np.ndarray          # bool (J,)

    @property
    def feasible(self) -> bool:
        """Respects capacity, power caps, budget, releases, deadlines and frozen placements."""
        return (self.capacity_violations == 0 and self.power_violations == 0
                and self.budget_excess_t <= TOL and self.n_late == 0 and self.n_early == 0
                and self.n_invalid == 0 and self.n_frozen_moved == 0
                and self.n_spot_unsafe == 0)

    def summary(self) -> dict[str, float | int]:
        """Scalar fields as a dict (for tables and JSON)."""
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int | float)}


def evaluate(inst: Instance, sched: Schedule, cc: CostCoefficients | None = None) -> Evaluation:
    """Score `sched` on `inst` (see the module docstring)."""
    cc = build_cost_coefficients(inst) if cc is None else cc
    J, T = inst.n_jobs, inst.n_slots
    if sched.n_jobs != J:
        raise ValueError(f"schedule has {sched.n_jobs} jobs, instance {J}")
    planned = sched.pool >= 0
    counts = np.diff(sched.indptr)
    start, end = sched.start, sched.end
    costs = schedule_costs(inst, cc, sched)
    late = planned & (end > inst.deadline_by_pool[np.arange(J), np.maximum(sched.pool, 0)])
    early = planned & (start < inst.release) & (inst.fixed_pool < 0)
    invalid = _invalid(inst, sched, planned, counts)
    win = build_windows(inst)
    safe_end = np.where(planned, win.latest_end[np.arange(J), np.maximum(sched.pool, 0)], 0)
    from carbonplan.planner.instance import SPOT

    on_spot = planned & (inst.market[np.maximum(sched.pool, 0)] == SPOT) & (inst.fixed_pool < 0)
    spot_unsafe = on_spot & (end > safe_end)
    fixed = inst.fixed_pool >= 0
    frozen_moved = fixed & ((sched.pool != inst.fixed_pool)
                            | ((start != np.clip(inst.fixed_start, 0, T)) & planned))
    units, kw = usage_of(inst, cc, sched)
    over_cap = units - inst.capacity
    over_pw = kw - inst.power_cap_kw
    t_total = float(costs.t_co2e.sum())
    unpl_pen = (np.where(inst.prev_pool >= 0, inst.move_penalty_usd, 0.0)
                + inst.unplanned_penalty_usd)
    penalty = float(unpl_pen[~planned].sum() + inst.unplanned_penalty_usd[late].sum())
    move_unplanned = float(np.where(~planned & (inst.prev_pool >= 0), inst.move_penalty_usd,
                                    0.0).sum())
    objective = float(costs.objective[planned].sum()) + penalty
    budget_excess = max(t_total - inst.carbon_budget_t, 0.0) if np.isfinite(
        inst.carbon_budget_t) else 0.0
    return Evaluation(
        objective=objective, cost_usd=float(costs.usd.sum()), t_co2e=t_total,
        t_operational=float(costs.kg_op.sum() / 1000), t_embodied=float(costs.kg_emb.sum() / 1000),
        energy_kwh=float(costs.kwh.sum()),
        move_usd=float(costs.move_usd[planned].sum()) + move_unplanned,
        penalty_usd=penalty - move_unplanned, n_planned=int(planned.sum()),
        n_unplanned=int((~planned).sum()), n_late=int(late.sum()), n_early=int(early.sum()),
        n_invalid=int(invalid.sum()), n_spot_unsafe=int(spot_unsafe.sum()),
        n_frozen_moved=int(frozen_moved.sum()),
        capacity_violations=int((over_cap > TOL).sum()),
        capacity_excess=float(max(over_cap.max(initial=0.0), 0.0)),
        power_violations=int((over_pw > TOL).sum()),
        power_excess_kw=float(max(np.nan_to_num(over_pw, neginf=0.0).max(initial=0.0), 0.0)),
        budget_excess_t=budget_excess, per_job=costs, late=late)


def _invalid(inst: Instance, sched: Schedule, planned: np.ndarray,
             counts: np.ndarray) -> np.ndarray:
    """Placements that are not columns of the job: ineligible pool, slots outside the horizon,
    unsorted or repeated slots, too little work, or a pause in a job that cannot pause."""
    J, T = inst.n_jobs, inst.n_slots
    pool = np.maximum(sched.pool, 0)
    bad = planned & ~inst.eligible[np.arange(J), pool]
    owner = np.repeat(np.arange(J), counts)
    s = sched.slots.astype(np.int64)
    outside = (s < 0) | (s >= T)
    bad |= planned & (np.bincount(owner, weights=outside, minlength=J) > 0)
    step = np.diff(s)
    same_owner = owner[1:] == owner[:-1]
    not_rising = same_owner & (step <= 0)
    gaps = same_owner & (step > 1)
    bad |= planned & (np.bincount(owner[1:], weights=not_rising, minlength=J) > 0)
    n_gaps = np.bincount(owner[1:], weights=gaps, minlength=J).astype(int)
    n_need = inst.duration_slots[np.arange(J), pool]
    work = counts - n_gaps * inst.resume_slots
    frozen = inst.fixed_pool >= 0
    bad |= planned & ~frozen & (work < n_need)
    bad |= planned & ~inst.pausable & (n_gaps > 0)
    return bad
