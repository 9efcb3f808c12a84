"""greedy.py and lns.py: placements fit, the search never makes the plan worse."""

from __future__ import annotations

import numpy as np
import pytest

from carbonplan.planner.backends import get_backend
from carbonplan.planner.columns import ColumnSet, Schedule
from carbonplan.planner.duals import Duals
from carbonplan.planner.greedy import Residual, place_dense
from carbonplan.planner.lns import LNS, Incumbent
from carbonplan.planner.prepare import prepare, usage_of
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.solve import candidates, dual_greedy

from .planner_helpers import assert_feasible, tiny_instance


def test_place_dense_respects_capacity() -> None:
    inst = tiny_instance(20, n_jobs=30, n_pools=4, n_slots=12, power_cap=True)
    prep = prepare(inst)
    cand = Pricer(prep).dense(None)
    res = Residual.of(prep)
    order = np.arange(inst.n_jobs)
    pool, start = place_dense(prep, cand, order, res, limit=prep.penalty)
    sched = Schedule.from_starts(inst, pool, start)
    assert_feasible(inst, sched)
    units, kw = usage_of(inst, prep.cc, sched)
    assert np.allclose(res.cap, inst.capacity - units)
    assert np.allclose(res.power[np.isfinite(res.power)],
                       (inst.power_cap_kw - kw)[np.isfinite(res.power)])


def _search_on(seed: int, plan_prices: Duals | None = None):
    """A 40-job instance, its dual-priced greedy plan (at `plan_prices`, zero by default) and a
    search over it at zero prices."""
    from carbonplan.planner.cg import CGResult

    inst = tiny_instance(seed, n_jobs=40, n_pools=4, n_slots=16, capacity=(2, 4))
    prep = prepare(inst)
    pricer = Pricer(prep)
    cols = ColumnSet.empty()
    y = Duals.zeros(4, 2, 16)
    chosen = dual_greedy(prep, pricer, cols, y if plan_prices is None else plan_prices,
                         rounds=1)[0]
    inc = Incumbent(prep, cols, chosen)
    res = pricer.price(y)
    cg = CGResult(duals=y, bound=res.lagrangian, lp_objective=np.inf, lp=None, pricing=res)
    ptr, idx = candidates(prep, pricer, cols, y, res, cg, chosen, 5)
    lns = LNS(prep, cols, ptr, idx, inc, y, res.job_rc, get_backend("highs"), max_jobs=8,
              window=4, dense=pricer.dense(y))
    return inst, prep, inc, lns


@pytest.mark.parametrize("workers", [1, 2])
def test_lns_never_worsens_and_keeps_residuals_consistent(workers: int) -> None:
    inst, prep, inc, lns = _search_on(21)
    objs = [inc.objective]
    lns.one_opt(time_limit=5.0)
    objs.append(inc.objective)
    lns.run(time_limit=1.0, on_iteration=lambda it, o: objs.append(o), workers=workers)
    assert all(b <= a + 1e-9 for a, b in zip(objs, objs[1:], strict=False))
    sched = inc.schedule()
    assert_feasible(inst, sched)
    again = Residual.of(prep, sched)
    assert np.allclose(again.cap, inc.res.cap)


def test_stale_move_is_dropped_and_plan_stays_feasible() -> None:
    """A sub-MIP answer computed against an older plan is adopted only if it still fits."""
    inst, prep, inc, lns = _search_on(22)
    jobs = np.flatnonzero(prep.free)
    first, second = lns.build(jobs[:20]), lns.build(jobs[10:30])
    assert first is not None and second is not None
    before = inc.objective
    for move in (first, second):  # the second was built before the first was applied
        out = get_backend("highs").solve(move.master, time_limit=5.0, rel_gap=0.0,
                                         warm_start=move.x0)
        lns.apply(move, out)
        assert inc.objective <= before + 1e-9
        before = inc.objective
    sched = inc.schedule()
    assert_feasible(inst, sched)
    assert np.allclose(Residual.of(prep, sched).cap, inc.res.cap)


def test_single_job_moves_go_past_frozen_jobs() -> None:
    """Frozen jobs (first in the sweep's order: the search counts them at their penalty) must
    not end the sweep: the free job still moves to the cheap pool. Before, no single-job move
    was ever made in a re-plan with a frozen job."""
    import dataclasses

    from carbonplan.planner.cg import CGResult
    from carbonplan.planner.columns import contiguous_slots

    T = 6
    inst = tiny_instance(
        0, n_jobs=2, n_pools=2, n_slots=T, pausable=0.0, spot=False, units=np.ones((2, 2)),
        duration_slots=np.array([[4, 4], [1, 1]], np.int32), release=np.zeros(2, np.int32),
        deadline=np.full(2, T, np.int32), eligible=np.ones((2, 2), bool),
        price_usd_per_unit_h=np.array([[1.0] * T, [5.0] * T]),
        ci_g_per_kwh=np.full((2, T), 100.0), unplanned_penalty_usd=np.full(2, 1000.0))
    inst = dataclasses.replace(inst, capacity=np.ones((2, T)),
                               fixed_pool=np.array([1, -1], np.int32),
                               fixed_start=np.array([0, -1], np.int32))
    prep = prepare(inst)
    pricer = Pricer(prep)
    cols = ColumnSet.empty()
    indptr, slots = contiguous_slots(np.array([5]), np.array([1]))
    chosen = np.full(2, -1, np.int64)  # frozen jobs are not in the search's plan: cost = penalty
    chosen[1] = cols.add(inst, prep.cc, np.array([1]), np.array([1]), indptr, slots)[0]
    inc = Incumbent(prep, cols, chosen)
    y = Duals.zeros(2, len(inst.site_names), T)
    res = pricer.price(y)
    cg = CGResult(duals=y, bound=res.lagrangian, lp_objective=np.inf, lp=None, pricing=res)
    ptr, idx = candidates(prep, pricer, cols, y, res, cg, chosen, 5)
    lns = LNS(prep, cols, ptr, idx, inc, y, res.job_rc, get_backend("highs"),
              dense=pricer.dense(y))
    assert lns.current_cost()[0] > lns.current_cost()[1], "the frozen job comes first"
    assert lns.one_opt(time_limit=5.0) == 1
    assert cols.pool[inc.chosen[1]] == 0



def test_single_job_moves_stop_when_a_sweep_saves_little() -> None:
    """Sweeps go on while one saves at least `min_gain` of the objective: with 0 until a sweep
    moves nothing; with a share no sweep can save, after the first."""
    # the plan is the dual-priced greedy at random prices, so moves by true cost remain
    skew = Duals(beta=-50 * np.random.default_rng(20).random((4, 16)), pi=np.zeros((2, 16)),
                 lam=0.0)
    _, _, inc, lns = _search_on(20, skew)
    start = inc.objective
    all_moves = lns.one_opt(time_limit=5.0, min_gain=0.0)
    all_saved = start - inc.objective
    _, _, inc, lns = _search_on(20, skew)
    one_sweep = lns.one_opt(time_limit=5.0, min_gain=1.0)
    one_saved = start - inc.objective
    assert 0 < one_sweep < all_moves
    assert 0 < one_saved < all_saved
