"""Tiny planning instances and a brute-force solver that enumerates every schedule."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np

from carbonplan.planner.backends import get_backend
from carbonplan.planner.cg import CGResult, add_priced_columns
from carbonplan.planner.columns import ColumnSet, Schedule, contiguous_slots, price_columns
from carbonplan.planner.duals import Duals
from carbonplan.planner.evaluate import evaluate
from carbonplan.planner.greedy import Residual
from carbonplan.planner.instance import ON_DEMAND, OWNED, SPOT, Instance
from carbonplan.planner.lns import LNS, Incumbent
from carbonplan.planner.prepare import prepare, usage_of
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.solve import candidates, dual_greedy, enumerate_pausable

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def tiny_instance(seed: int, *, n_jobs: int = 3, n_pools: int = 2, n_slots: int = 8,
                  pausable: float = 0.3, spot: bool = True, power_cap: bool = False,
                  budget: bool = False, owned: bool = False, capacity: tuple[int, int] = (1, 3),
                  partial_last_slot: bool = True, **overrides: object) -> Instance:
    """A small random instance: pools alternate on-demand / spot (or owned), one or two sites."""
    rng = np.random.default_rng(seed)
    P, J, T = n_pools, n_jobs, n_slots
    market = np.array([(OWNED if owned else ON_DEMAND) if p % 2 == 0 else
                       (SPOT if spot else ON_DEMAND) for p in range(P)], dtype=np.int8)
    site = (np.arange(P) // 2).astype(np.int32)
    S = int(site.max()) + 1
    cap = rng.integers(capacity[0], capacity[1] + 1, size=(P, 1)) * np.ones((1, T))
    price = np.where(market[:, None] == OWNED, 0.0, rng.uniform(1, 4, (P, T)))
    price = np.where(market[:, None] == SPOT, price * 0.4, price)
    energy = np.where(market[:, None] == OWNED, rng.uniform(0.05, 0.3, (P, T)), 0.0)
    ci = rng.uniform(20, 600, (P, T))
    units = rng.integers(1, 3, size=(J, 1)) * np.ones((1, P))
    duration = rng.integers(1, 4, size=(J, P)).astype(np.int32)
    release = rng.integers(0, T - 2, size=J).astype(np.int32)
    deadline = np.minimum(release + duration.max(axis=1) + rng.integers(0, 4, size=J), T)
    eligible = rng.random((J, P)) < 0.85
    eligible[np.arange(J), rng.integers(0, P, J)] = True
    paus = rng.random(J) < pausable
    interval = np.where(rng.random(J) < 0.5, rng.uniform(0.5, 2.0, J), 0.0)
    ckpt = np.where(interval > 0, rng.uniform(0.1, 0.5, J), 0.0)
    power_kw = units * rng.uniform(0.3, 0.7, (J, 1))
    pcap = np.full((S, T), np.inf)
    if power_cap:
        pcap = np.full((S, T), float(rng.uniform(0.8, 2.0)))
    fields = dict(
        t0=T0, slot_h=1.0, pool_names=tuple(f"pool{p}" for p in range(P)), market=market,
        site=site, pue=rng.uniform(1.1, 1.5, P),
        eviction_rate_per_h=np.where(market == SPOT, rng.uniform(0.01, 0.1, P), 0.0),
        embodied_kg_per_unit_h=rng.uniform(0.01, 0.05, P), capacity=cap,
        price_usd_per_unit_h=price, energy_price_usd_per_kwh=energy, ci_g_per_kwh=ci,
        site_names=tuple(f"site{s}" for s in range(S)), power_cap_kw=pcap,
        job_ids=np.arange(100, 100 + J), eligible=eligible, units=units,
        duration_slots=duration, power_kw=power_kw, release=release,
        deadline=deadline.astype(np.int32), pausable=paus,
        resume_slots=np.where(paus, rng.integers(0, 2, J), 0).astype(np.int32),
        checkpoint_interval_h=interval, checkpoint_cost_h=ckpt,
        home_pool=np.zeros(J, dtype=np.int32), unplanned_penalty_usd=rng.uniform(30, 80, J),
        carbon_price_usd_per_t=float(rng.choice([100.0, 2000.0])),
    )
    # half the runs end inside their last slot (own stream: the other draws stay as they were)
    rs = np.random.default_rng([seed, 1])
    if partial_last_slot:
        fields["final_share"] = np.where(rs.random((J, P)) < 0.5, rs.uniform(0.05, 1.0, (J, P)),
                                         1.0)
    if budget:
        fields["carbon_budget_t"] = float(rng.uniform(0.0005, 0.003))
    fields.update(overrides)
    return Instance(**fields)


def all_columns(inst: Instance, j: int) -> list[tuple[int, np.ndarray]]:
    """Every column of job j: contiguous runs and (pausable) every segmented run, in-window."""
    prep = prepare(inst)
    out = []
    for p in np.flatnonzero(inst.eligible[j]):
        n = int(inst.duration_slots[j, p])
        lo, hi = int(prep.win.earliest[j]), int(prep.win.latest_end[j, p])
        if inst.pausable[j]:
            indptr, slots = enumerate_pausable(prep, j, int(p))
            for k in range(len(indptr) - 1):
                out.append((int(p), slots[indptr[k]:indptr[k + 1]]))
        else:
            for s in range(lo, hi - n + 1):
                out.append((int(p), np.arange(s, s + n, dtype=np.int32)))
    return out


def brute_force(inst: Instance) -> tuple[float, Schedule]:
    """The optimum over every combination of columns (or unplanned) of the free jobs."""
    prep = prepare(inst)
    J = inst.n_jobs
    options: list[list[tuple[int, np.ndarray | None, float, float]]] = []
    for j in range(J):
        if not prep.free[j]:
            options.append([(-2, None, 0.0, 0.0)])
            continue
        opts = [(-1, None, float(prep.penalty[j]), 0.0)]
        for p, slots in all_columns(inst, j):
            c = price_columns(inst, prep.cc, np.array([j]), np.array([p]),
                              np.array([0, len(slots)]), slots)
            opts.append((p, slots, float(c.objective[0]), float(c.t_co2e[0])))
        options.append(opts)
    best, best_sched = np.inf, None
    for combo in itertools.product(*options):
        total = prep.frozen_cost + sum(o[2] for o in combo)
        if total >= best - 1e-12:
            continue
        t = sum(o[3] for o in combo)
        if t > prep.budget_t + 1e-9:
            continue
        sched = _schedule(inst, prep, combo)
        units, kw = usage_of(inst, prep.cc, sched)
        if (units > inst.capacity + 1e-9).any() or (kw > inst.power_cap_kw + 1e-9).any():
            continue
        best, best_sched = total, sched
    return best, best_sched


def _schedule(inst: Instance, prep: object, combo: tuple) -> Schedule:
    J = inst.n_jobs
    pool = np.full(J, -1, dtype=np.int32)
    lists = []
    for j, (p, slots, _, _) in enumerate(combo):
        if p == -2:
            pool[j] = prep.frozen.pool[j]
            lists.append(prep.frozen.job_slots(j))
        elif p >= 0:
            pool[j] = p
            lists.append(slots)
        else:
            lists.append(np.zeros(0, dtype=np.int32))
    counts = np.array([len(s) for s in lists])
    indptr = np.zeros(J + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    slots = np.concatenate(lists).astype(np.int32) if counts.sum() else np.zeros(0, np.int32)
    return Schedule(pool=pool, indptr=indptr, slots=slots)


def contiguous(inst: Instance, pool: list[int], start: list[int]) -> Schedule:
    """Schedule from lists (convenience)."""
    return Schedule.from_starts(inst, np.array(pool), np.array(start))


def assert_feasible(inst: Instance, sched: Schedule) -> None:
    """Every rule a plan must respect, checked by the common evaluator."""
    ev = evaluate(inst, sched)
    assert ev.capacity_violations == 0
    assert ev.power_violations == 0
    assert ev.budget_excess_t <= 1e-6  # within solver tolerance (1e-7 kg per row scale)
    assert ev.n_early == 0
    assert ev.n_late == 0
    assert ev.n_invalid == 0
    assert ev.n_spot_unsafe == 0
    assert ev.n_frozen_moved == 0
    planned = sched.pool >= 0
    free = inst.fixed_pool < 0
    assert np.all(sched.start[planned & free] >= inst.release[planned & free])
    assert np.all(sched.end[planned] <= inst.deadline[planned])



def assert_residuals_match(lns: LNS, inc: Incumbent) -> None:
    """The residual capacity, power and budget the incumbent keeps are those of its plan."""
    again = Residual.of(lns.prep, inc.schedule(), t_co2e=float(lns.cols.t_co2e[
        inc.chosen[inc.chosen >= 0]].sum()))
    assert np.allclose(again.cap, inc.res.cap)
    assert np.allclose(again.power[np.isfinite(again.power)],
                       inc.res.power[np.isfinite(inc.res.power)])
    assert abs(again.budget - inc.res.budget) <= 1e-9 or not np.isfinite(again.budget)


def search_state(inst: Instance, chosen=None, *, max_jobs: int = 6,
                 prices: Duals | None = None) -> tuple[LNS, Incumbent]:
    """A search over `inst` from `chosen(prep, cols)` -> column per job (default: the greedy at
    zero prices), with candidates and dense runs priced at `prices` (default: zero duals)."""
    prep = prepare(inst)
    pricer = Pricer(prep)
    cols = ColumnSet.empty()
    y = Duals.zeros(inst.n_pools, len(inst.site_names), inst.n_slots)
    if chosen is None:
        chosen = dual_greedy(prep, pricer, cols, y, rounds=1)[0]
    else:
        chosen = chosen(prep, cols)
    inc = Incumbent(prep, cols, chosen)
    y = prices if prices is not None else y
    res = pricer.price(y)
    cg = CGResult(duals=y, bound=res.lagrangian, lp_objective=np.inf, lp=None, pricing=res)
    ptr, idx = candidates(prep, pricer, cols, y, res, cg, chosen, 50)
    lns = LNS(prep, cols, ptr, idx, inc, y, res.job_rc, get_backend("highs"), max_jobs=max_jobs,
              window=4, dense=pricer.dense(y))
    return lns, inc


__all__ = ["all_columns", "assert_feasible", "brute_force", "contiguous", "contiguous_slots",
           "assert_residuals_match", "priced_start", "search_state", "tiny_instance"]


def priced_start(inst: Instance):
    """Prepared instance, pricer, pricing at zero prices, a ColumnSet and the indices of each
    job's cheapest column in it: where column generation starts."""
    prep = prepare(inst)
    pricer = Pricer(prep)
    res = pricer.price(Duals.zeros(inst.n_pools, len(inst.site_names), inst.n_slots))
    cols = ColumnSet.empty()
    jobs = np.flatnonzero(res.job_pool >= 0)
    return prep, pricer, res, cols, add_priced_columns(pricer, res, cols, jobs,
                                                       res.job_pool[jobs])


def cheapest_columns(inst: Instance, per_job: int) -> tuple[object, ColumnSet]:
    """(prepared instance, a ColumnSet of each job's `per_job` cheapest contiguous columns at
    zero prices): the columns master and backend tests build their masters from."""
    from carbonplan.planner.duals import Duals
    from carbonplan.planner.pricing import Pricer

    prep = prepare(inst)
    zero = Duals.zeros(inst.n_pools, len(inst.site_names), inst.n_slots)
    j, p, s, _ = Pricer(prep).top_contiguous(zero, per_job)
    indptr, slots = contiguous_slots(s, inst.duration_slots[j, p])
    cols = ColumnSet.empty()
    cols.add(inst, prep.cc, j, p, indptr, slots)
    return prep, cols
