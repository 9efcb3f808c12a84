"""What every planning step derives once from an `Instance`: cost coefficients, windows, frozen
jobs and the residual capacities they leave.

Frozen jobs (`fixed_pool >= 0`) are not optimized: they run contiguously from `fixed_start` for
`duration_slots` slots in `fixed_pool`, clipped to the horizon (a job that started before slot 0
has `fixed_start < 0`). Their usage is taken off the pool capacities, the site power caps and the
carbon budget (each clipped at zero), and their cost is a constant of the objective.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonplan.planner.columns import ColumnCosts, Schedule, contiguous_slots, price_columns
from carbonplan.planner.costs import CostCoefficients, build_cost_coefficients
from carbonplan.planner.instance import Instance
from carbonplan.planner.windows import Windows, build_windows


@dataclass(frozen=True, eq=False)
class Prepared:
    """An instance with its derived arrays. Shapes: J jobs, P pools, T slots, S sites."""

    inst: Instance
    cc: CostCoefficients
    win: Windows
    free: np.ndarray           # bool (J,): optimized (not frozen)
    frozen: Schedule           # placements of frozen jobs (others unplanned)
    frozen_cost: float         # objective $ of the frozen jobs
    cap: np.ndarray            # float (P, T): capacity left by frozen jobs (inf = unbounded)
    power_cap: np.ndarray      # float (S, T): facility kW left by frozen jobs (inf = no cap)
    budget_t: float            # tCO2e left by frozen jobs (inf = no budget)
    penalty: np.ndarray        # float (J,): cost of leaving a job unplanned (incl. move penalty)

    @property
    def n_jobs(self) -> int:
        return self.inst.n_jobs


def usage_of(inst: Instance, cc: CostCoefficients, sched: Schedule
             ) -> tuple[np.ndarray, np.ndarray]:
    """Units used per (pool, slot) and facility kW per (site, slot) by a schedule.

    Returns:
        (units (P, T), facility kW (S, T)).
    """
    P, T, S = inst.n_pools, inst.n_slots, len(inst.site_names)
    counts = np.diff(sched.indptr)
    jj = np.repeat(np.arange(sched.n_jobs), counts)
    pp = np.repeat(sched.pool, counts)
    tt = sched.slots.astype(np.int64)
    inside = (tt >= 0) & (tt < T) & (pp >= 0)
    jj, pp, tt = jj[inside], pp[inside], tt[inside]
    units = np.bincount(pp * T + tt, weights=cc.units[jj, pp], minlength=P * T).reshape(P, T)
    kw = np.bincount(inst.site[pp].astype(np.int64) * T + tt, weights=cc.facility_kw[jj, pp],
                     minlength=S * T).reshape(S, T)
    return units, kw


def schedule_costs(inst: Instance, cc: CostCoefficients, sched: Schedule) -> ColumnCosts:
    """Cost parts of every job's placement, (J,); unplanned jobs have zeros (no penalty here)."""
    J = sched.n_jobs
    counts = np.diff(sched.indptr)
    planned = (sched.pool >= 0) & (counts > 0)
    pool = np.where(planned, sched.pool, 0)
    keep = np.repeat(planned, counts)
    indptr = np.zeros(J + 1, dtype=np.int64)
    np.cumsum(np.where(planned, counts, 0), out=indptr[1:])
    costs = price_columns(inst, cc, np.arange(J), pool, indptr,
                          np.clip(sched.slots[keep], 0, inst.n_slots - 1))
    zero = np.where(planned, 1.0, 0.0)
    return ColumnCosts(usd=costs.usd * zero, kg_op=costs.kg_op * zero,
                       kg_emb=costs.kg_emb * zero, kwh=costs.kwh * zero,
                       move_usd=np.where(planned, costs.move_usd, 0.0),
                       objective=costs.objective * zero)


def frozen_schedule(inst: Instance) -> Schedule:
    """Placements of the frozen jobs (clipped to the horizon); other jobs unplanned."""
    fixed = inst.fixed_pool >= 0
    pool = np.where(fixed, inst.fixed_pool, -1).astype(np.int32)
    n = np.where(fixed, inst.duration_slots[np.arange(inst.n_jobs), np.maximum(pool, 0)], 0)
    start = np.where(fixed, inst.fixed_start, 0).astype(np.int64)
    lo = np.clip(start, 0, inst.n_slots)
    hi = np.clip(start + n, 0, inst.n_slots)
    indptr, slots = contiguous_slots(lo, hi - lo)
    return Schedule(pool=pool, indptr=indptr, slots=slots)


def prepare(inst: Instance) -> Prepared:
    """Derive coefficients, windows, frozen usage and residual capacities of an instance."""
    cc = build_cost_coefficients(inst)
    win = build_windows(inst)
    free = inst.fixed_pool < 0
    frozen = frozen_schedule(inst)
    units, kw = usage_of(inst, cc, frozen)
    fcost = schedule_costs(inst, cc, frozen)
    cap = np.maximum(inst.capacity.astype(float) - units, 0.0)
    power_cap = np.maximum(inst.power_cap_kw.astype(float) - kw, 0.0)
    budget = float(inst.carbon_budget_t)
    if np.isfinite(budget):
        budget = max(budget - float(fcost.t_co2e.sum()), 0.0)
    moved_if_unplanned = inst.prev_pool >= 0
    penalty = inst.unplanned_penalty_usd + np.where(moved_if_unplanned, inst.move_penalty_usd, 0)
    return Prepared(inst=inst, cc=cc, win=win, free=free, frozen=frozen,
                    frozen_cost=float(fcost.objective.sum()), cap=cap, power_cap=power_cap,
                    budget_t=budget, penalty=penalty.astype(float))
