"""Explanations at array level: why a job runs where and when it does, or why it does not run.

`explain_job` gives a planned job's pool, start, end, kWh, kgCO2e and $, and the alternatives it
beat: run-now (home pool at release), the best column on another site, the best column in another
market, each with its deltas (alternative minus chosen; positive means the plan is better) and
whether it would fit the capacity the other jobs leave. For an unplanned job it gives the binding
reason. `infeasible_alone` says whether a job cannot run even with the whole site to itself, and
why (used at submit).

Reason codes: `no-eligible-pool`, `deadline` (window shorter than the run on every eligible pool,
spot safety included), `capacity-alone` (needs more units than any eligible pool has in its
window), `power-cap-alone`, `carbon-budget-alone`, `cost` (every column costs more than leaving
it unplanned), `capacity` (capacity taken in every feasible window), `power-cap` (only the site
power cap blocks it), `carbon-budget` (only the budget blocks it), `not-optimal` (a column fits;
the plan stopped early).

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from carbonplan.planner.columns import Schedule, price_columns
from carbonplan.planner.greedy import EPS, Residual
from carbonplan.planner.instance import MARKET_NAMES, SPOT, Instance
from carbonplan.planner.policies import home_pools
from carbonplan.planner.prepare import Prepared, prepare
from carbonplan.planner.pricing import _pausable_dp


@dataclass(frozen=True)
class Option:
    """One way to run a job, with its costs; deltas are relative to the chosen placement."""

    label: str            # chosen | run-now | other-site | other-market
    pool: int
    pool_name: str
    start: int
    end: int
    kwh: float
    kg_co2e: float        # operational + embodied
    usd: float
    objective: float
    fits: bool            # fits the capacity left by the other jobs
    delta_usd: float = 0.0
    delta_kg_co2e: float = 0.0
    delta_objective: float = 0.0


@dataclass(frozen=True)
class Infeasibility:
    """Why a job cannot run."""

    code: str
    message: str


@dataclass(frozen=True)
class JobExplanation:
    """Explanation of one job's placement (or of its absence)."""

    job: int
    job_id: int
    planned: bool
    chosen: Option | None
    alternatives: list[Option] = field(default_factory=list)
    reason: Infeasibility | None = None


def _option(prep: Prepared, j: int, p: int, slots: np.ndarray, label: str,
            fits: bool) -> Option:
    inst = prep.inst
    c = price_columns(inst, prep.cc, np.array([j]), np.array([p]),
                      np.array([0, len(slots)]), slots.astype(np.int32))
    return Option(label=label, pool=p, pool_name=inst.pool_names[p], start=int(slots[0]),
                  end=int(slots[-1]) + 1, kwh=float(c.kwh[0]),
                  kg_co2e=float(c.kg_op[0] + c.kg_emb[0]), usd=float(c.usd[0]),
                  objective=float(c.objective[0]), fits=fits)


def _with_delta(opt: Option, base: Option) -> Option:
    return Option(**{**opt.__dict__, "delta_usd": opt.usd - base.usd,
                     "delta_kg_co2e": opt.kg_co2e - base.kg_co2e,
                     "delta_objective": opt.objective - base.objective})


def _fits_mask(prep: Prepared, res: Residual, j: int, p: int) -> np.ndarray:
    """bool (T,): slots where job j fits pool p's residual capacity and its site's power."""
    cc = prep.cc
    ok = res.cap[p] >= cc.units[j, p] - EPS
    ok &= res.power[prep.inst.site[p]] >= cc.facility_kw[j, p] - EPS
    return ok


def _run_ok(ok: np.ndarray, n: int, lo: int, hi: int) -> np.ndarray:
    """bool (T,): starts s in [lo, hi - n] with ok[s:s+n] all true."""
    T = ok.shape[0]
    cb = np.zeros(T + 1, dtype=np.int64)
    np.cumsum(~ok, out=cb[1:])
    out = np.zeros(T, dtype=bool)
    last = min(hi, T) - n
    if last >= lo:
        s = np.arange(max(lo, 0), last + 1)
        out[s] = (cb[s + n] - cb[s]) == 0
    return out


def _pausable_ok(ok: np.ndarray, n: int, r: int, lo: int, hi: int) -> bool:
    """Whether n work slots (each resume costing r slots) fit the ok slots of [lo, hi)."""
    if hi - lo < n:
        return False
    cost = np.where(ok[lo:hi], 0.0, np.inf)[None, :]
    best, _, _ = _pausable_dp(cost, np.zeros_like(cost), np.array([n]), np.array([r]), False)
    return bool(np.isfinite(best[0]))


def _columns_for(prep: Prepared, j: int, ok_by_pool: dict[int, np.ndarray]
                 ) -> list[tuple[int, int]]:
    """Contiguous (pool, start) columns of job j allowed by its windows and the given masks."""
    inst, win = prep.inst, prep.win
    out = []
    for p, ok in ok_by_pool.items():
        n = int(inst.duration_slots[j, p])
        starts = np.flatnonzero(_run_ok(ok, n, int(win.earliest[j]), int(win.latest_end[j, p])))
        out += [(p, int(s)) for s in starts]
    return out


def infeasible_alone(inst: Instance, j: int, prep: Prepared | None = None
                     ) -> Infeasibility | None:
    """Why job j cannot run even with every pool and power cap to itself; None if it can.

    Frozen jobs are not counted (the question is about the job alone).
    """
    prep = prepare(inst) if prep is None else prep
    cc, win = prep.cc, prep.win
    T = inst.n_slots
    pools = np.flatnonzero(inst.eligible[j])
    if pools.size == 0:
        return Infeasibility("no-eligible-pool", "no pool is eligible for this job "
                             "(accelerator, region and market constraints)")
    width = win.latest_end[j, pools] - win.earliest[j]
    n = inst.duration_slots[j, pools]
    in_time = pools[width >= n]
    if in_time.size == 0:
        k = int(np.argmin(n))
        spot_note = (" (spot pools also keep a safety margin for an eviction)"
                     if (inst.market[pools] == SPOT).any() else "")
        return Infeasibility(
            "deadline", f"needs {int(n[k])} slots on its fastest eligible pool "
            f"({inst.pool_names[pools[k]]}) but its window [{int(inst.release[j])}, "
            f"{int(inst.deadline[j])}) has {int(inst.deadline[j] - inst.release[j])}"
            f"{spot_note}")
    full = Residual(cap=inst.capacity.astype(float).copy(),
                    power=inst.power_cap_kw.astype(float).copy(),
                    budget=float(inst.carbon_budget_t))
    cap_ok = {}
    all_ok = {}
    for p in in_time:
        cap_ok[int(p)] = full.cap[p] >= cc.units[j, p] - EPS
        all_ok[int(p)] = cap_ok[int(p)] & (full.power[inst.site[p]] >= cc.facility_kw[j, p] - EPS)
    if not _any_column(prep, j, cap_ok):
        most = max(float(inst.capacity[p, win.earliest[j]:win.latest_end[j, p]].max(initial=0))
                   for p in in_time)
        return Infeasibility("capacity-alone", f"needs {float(inst.units[j, in_time].min()):g} "
                             f"units but its eligible pools offer at most {most:g} in its window")
    if not _any_column(prep, j, all_ok):
        return Infeasibility("power-cap-alone", "its facility power exceeds the site power cap "
                             "in every window")
    cols = _columns_for(prep, j, all_ok)
    if cols:
        pp = np.array([c[0] for c in cols])
        ss = np.array([c[1] for c in cols])
        nn = inst.duration_slots[j, pp]
        from carbonplan.planner.columns import contiguous_slots

        indptr, slots = contiguous_slots(ss, nn)
        costs = price_columns(inst, cc, np.full(len(pp), j), pp, indptr,
                              np.clip(slots, 0, T - 1))
        if np.isfinite(inst.carbon_budget_t) and costs.t_co2e.min() > inst.carbon_budget_t:
            return Infeasibility("carbon-budget-alone", f"its lowest-carbon run emits "
                                 f"{costs.t_co2e.min():.3f} tCO2e, above the carbon budget of "
                                 f"{inst.carbon_budget_t:.3f}")
        if costs.objective.min() >= prep.penalty[j]:
            return Infeasibility("cost", f"its cheapest run costs ${costs.objective.min():.2f}, "
                                 f"not less than leaving it unplanned (${prep.penalty[j]:.2f})")
    return None


def _any_column(prep: Prepared, j: int, ok_by_pool: dict[int, np.ndarray]) -> bool:
    inst, win = prep.inst, prep.win
    for p, ok in ok_by_pool.items():
        lo, hi = int(win.earliest[j]), int(win.latest_end[j, p])
        n = int(inst.duration_slots[j, p])
        if _run_ok(ok, n, lo, hi).any():
            return True
        if inst.pausable[j] and _pausable_ok(ok, n, int(inst.resume_slots[j]), lo, hi):
            return True
    return False


def explain_job(inst: Instance, sched: Schedule, j: int, prep: Prepared | None = None
                ) -> JobExplanation:
    """Explain job j's placement in `sched` (see the module docstring)."""
    prep = prepare(inst) if prep is None else prep
    res = _residual_without(prep, sched, j)
    job_id = int(inst.job_ids[j])
    if sched.pool[j] < 0:
        return JobExplanation(job=j, job_id=job_id, planned=False, chosen=None,
                              reason=_why_unplanned(prep, res, j))
    p = int(sched.pool[j])
    chosen = _option(prep, j, p, sched.job_slots(j), "chosen", True)
    alts = []
    home = int(home_pools(inst)[j])
    if home >= 0:
        n = int(inst.duration_slots[j, home])
        s = int(np.clip(inst.release[j], 0, max(inst.n_slots - n, 0)))
        slots = np.arange(s, min(s + n, inst.n_slots))
        fits = bool(_fits_mask(prep, res, j, home)[slots].all()) and len(slots) == n
        alts.append(_with_delta(_option(prep, j, home, slots, "run-now", fits), chosen))
    site_other = np.flatnonzero(inst.eligible[j] & (inst.site != inst.site[p]))
    market_other = np.flatnonzero(inst.eligible[j] & (inst.market != inst.market[p]))
    for label, pools in (("other-site", site_other), ("other-market", market_other)):
        best = _cheapest(prep, res, j, pools)
        if best is not None:
            alts.append(_with_delta(Option(**{**best.__dict__, "label": label}), chosen))
    return JobExplanation(job=j, job_id=job_id, planned=True, chosen=chosen, alternatives=alts)


def _residual_without(prep: Prepared, sched: Schedule, j: int) -> Residual:
    """Resources left by every job of `sched` except j (frozen jobs at their fixed place)."""
    from carbonplan.planner.prepare import schedule_costs

    drop = np.flatnonzero(prep.inst.fixed_pool >= 0)
    others = sched.replace(np.append(drop, j), Schedule.unplanned(sched.n_jobs))
    t = float(schedule_costs(prep.inst, prep.cc, others).t_co2e.sum())
    return Residual.of(prep, others, t_co2e=t)


def _cheapest(prep: Prepared, res: Residual, j: int, pools: np.ndarray) -> Option | None:
    """The cheapest contiguous column of job j on `pools` ignoring capacity, with its fit."""
    inst = prep.inst
    everywhere = {int(p): np.ones(inst.n_slots, dtype=bool) for p in pools}
    cols = _columns_for(prep, j, everywhere)
    if not cols:
        return None
    pp = np.array([c[0] for c in cols])
    ss = np.array([c[1] for c in cols])
    from carbonplan.planner.columns import contiguous_slots

    indptr, slots = contiguous_slots(ss, inst.duration_slots[j, pp])
    costs = price_columns(inst, prep.cc, np.full(len(pp), j), pp, indptr, slots)
    k = int(np.argmin(costs.objective))
    sl = slots[indptr[k]:indptr[k + 1]]
    fits = bool(_fits_mask(prep, res, j, int(pp[k]))[sl].all())
    return _option(prep, j, int(pp[k]), sl, "best", fits)


def _why_unplanned(prep: Prepared, res: Residual, j: int) -> Infeasibility:
    alone = infeasible_alone(prep.inst, j, prep)
    if alone is not None:
        return alone
    inst, cc = prep.inst, prep.cc
    pools = [int(p) for p in np.flatnonzero(inst.eligible[j])]
    cap_only = {p: res.cap[p] >= cc.units[j, p] - EPS for p in pools}
    if not _any_column(prep, j, cap_only):
        return Infeasibility("capacity", "the capacity of every eligible pool is taken by other "
                             "jobs in every window that meets its deadline")
    both = {p: cap_only[p] & (res.power[inst.site[p]] >= cc.facility_kw[j, p] - EPS)
            for p in pools}
    if not _any_column(prep, j, both):
        return Infeasibility("power-cap", "capacity is free in some window, but the site power "
                             "cap is reached there")
    if np.isfinite(res.budget):
        cols = _columns_for(prep, j, both)
        if cols:
            from carbonplan.planner.columns import contiguous_slots

            pp = np.array([c[0] for c in cols])
            ip, sl = contiguous_slots(np.array([c[1] for c in cols]),
                                      inst.duration_slots[j, pp])
            t = price_columns(inst, cc, np.full(len(pp), j), pp, ip, sl).t_co2e
            if t.min() > res.budget + EPS:
                return Infeasibility("carbon-budget", "capacity and power are free in some "
                                     "window, but the carbon budget is used up by other jobs")
    return Infeasibility("not-optimal", "a window with free capacity exists; the plan stopped "
                         "before placing this job (time limit)")


def describe_market(code: int) -> str:
    """Market name of a market code."""
    return MARKET_NAMES[int(code)]
