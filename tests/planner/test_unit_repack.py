"""unit_repack.py: unit jobs re-placed from their sub-LP; never worse, always feasible."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonplan.planner import local_search, unit_repack
from carbonplan.planner.columns import contiguous_slots
from carbonplan.planner.greedy import Residual
from carbonplan.planner.lns import LNS
from carbonplan.planner.solve import PlanOptions, plan, repack_repair

from .planner_helpers import assert_feasible, assert_residuals_match, search_state, tiny_instance


def _unit_instance(seed: int, **kw):
    n_jobs = kw.pop("n_jobs", 30)
    n_pools = kw.pop("n_pools", 4)
    return tiny_instance(seed, n_jobs=n_jobs, n_pools=n_pools, n_slots=12, capacity=(1, 3),
                         pausable=0.0, units=np.ones((n_jobs, n_pools)), **kw)


def test_unit_jobs_are_those_of_one_unit_everywhere() -> None:
    inst = tiny_instance(3, n_jobs=20, n_pools=3, n_slots=10, pausable=0.3)
    lns, _ = search_state(inst)
    got = unit_repack.unit_jobs(lns)
    units = np.where(inst.eligible, inst.units, 1.0)
    want = np.flatnonzero((units == 1).all(axis=1) & ~inst.pausable)
    assert np.array_equal(got, want)


def _blocking_state():
    """Three 2-slot unit jobs, a cheap 1-unit pool and a dear 3-unit one, 4 slots: the plan parks
    job 0 in the middle of the cheap pool, so the other two pay the dear pool."""
    T = 4
    price = np.array([[1.0] * T, [5.0] * T])
    inst = tiny_instance(
        0, n_jobs=3, n_pools=2, n_slots=T, pausable=0.0, spot=False,
        units=np.ones((3, 2)), duration_slots=np.full((3, 2), 2, np.int32),
        release=np.zeros(3, np.int32), deadline=np.full(3, T, np.int32),
        eligible=np.ones((3, 2), bool), price_usd_per_unit_h=price,
        ci_g_per_kwh=np.full((2, T), 100.0), unplanned_penalty_usd=np.full(3, 1000.0))
    inst = dataclasses.replace(inst, capacity=np.array([[1.0] * T, [3.0] * T]))

    def blocking(prep, cols):
        # job 0 on the cheap pool at slots 1-2, jobs 1 and 2 on the dear pool
        pools = np.array([0, 1, 1])
        indptr, slots = contiguous_slots(np.array([1, 0, 0]), np.array([2, 2, 2]))
        return cols.add(prep.inst, prep.cc, np.arange(3), pools, indptr, slots)

    lns, inc = search_state(inst, blocking)
    return inst, lns, inc


def test_a_blocking_placement_is_undone() -> None:
    """The blocking plan is repacked to two jobs back to back on the cheap pool; a rounding that
    is cheaper does not call the repair."""
    inst, lns, inc = _blocking_state()
    before = inc.objective
    calls: list[LNS] = []
    stats = unit_repack.repack_unit_jobs(lns, time_limit=5.0, min_jobs=0,
                                         repair=lambda lns, left: calls.append(lns))
    assert not calls and not stats.moved
    assert stats.jobs == 3
    assert stats.gain > 0 and inc.objective == before - stats.gain
    sched = inc.schedule()
    assert_feasible(inst, sched)
    assert (sched.pool == 0).sum() == 2, "two jobs share the cheap pool, one after the other"
    assert stats.gain <= stats.promise + 1e-9


def _drop_all(lns, move, x, duals, snapshot) -> None:
    """A rounding that places nothing (every freed job at its penalty): the worst it can do."""
    lns.inc.set_jobs(move.jobs, np.full(move.jobs.size, -1, dtype=np.int64))


def test_a_worse_rounding_restores_the_incumbent_exactly(monkeypatch) -> None:
    """If rounding (and its repair) ends dearer, the plan is put back as it was."""
    inst = _unit_instance(5)
    lns, inc = search_state(inst)
    snapshot, before = inc.chosen.copy(), inc.objective

    monkeypatch.setattr(unit_repack, "_round", _drop_all)
    monkeypatch.setattr(LNS, "improve", lambda self, jobs: 0.0)  # and a repair that fails
    stats = unit_repack.repack_unit_jobs(lns, time_limit=5.0, min_jobs=0)
    if stats.promise > 0:
        assert stats.repaired > 0
    assert stats.gain == 0.0
    assert np.array_equal(inc.chosen, snapshot)
    assert inc.objective == before
    assert np.allclose(Residual.of(lns.prep, inc.schedule()).cap, inc.res.cap)


def test_a_rounding_that_is_not_cheaper_is_repaired_by_the_moves(monkeypatch) -> None:
    """From a rounded plan dearer than the incumbent, the repair (the compiled moves, as the
    solver passes them) runs from that plan, and the cheaper plan it finds is adopted."""
    local_search._compile()
    inst, lns, inc = _blocking_state()
    before = inc.objective
    monkeypatch.setattr(unit_repack, "_round", _drop_all)
    monkeypatch.setattr(LNS, "improve", lambda self, jobs: 0.0)  # the sub-MIP repair fails
    seen: list[float] = []

    def repair(lns: LNS, left: float) -> None:
        seen.append(lns.inc.objective)  # the rounded plan: all three jobs at their penalty
        local_search.improve(lns, min(1.0, left), seed=0, workers=1)

    stats = unit_repack.repack_unit_jobs(lns, time_limit=5.0, min_jobs=0, repair=repair)
    assert seen == [3000.0] and stats.moved
    assert stats.gain > 0 and np.isclose(inc.objective, before - stats.gain)
    sched = inc.schedule()
    assert_feasible(inst, sched)
    assert_residuals_match(lns, inc)
    assert (sched.pool == 0).sum() == 2, "the moves found the back-to-back plan"


def test_a_repair_that_does_not_pay_restores_the_incumbent(monkeypatch) -> None:
    """A repair that leaves the plan dearer than before (here: it does nothing) is undone too."""
    inst, lns, inc = _blocking_state()
    snapshot, before = inc.chosen.copy(), inc.objective
    monkeypatch.setattr(unit_repack, "_round", _drop_all)
    monkeypatch.setattr(LNS, "improve", lambda self, jobs: 0.0)
    calls: list[tuple[LNS, float]] = []
    stats = unit_repack.repack_unit_jobs(lns, time_limit=5.0, min_jobs=0,
                                         repair=lambda lns, left: calls.append((lns, left)))
    assert [c[0] for c in calls] == [lns] and stats.moved and stats.gain == 0.0
    assert 0.0 < calls[0][1] <= 5.0, "the repair gets what the repack's LP left of its time"
    assert np.array_equal(inc.chosen, snapshot) and inc.objective == before
    assert_residuals_match(lns, inc)


def test_no_repair_once_the_repack_has_no_time_left(monkeypatch) -> None:
    """A repack whose LP used up its time does not start the repair (which would run the plan
    past its limit: seen on trace instances, a 10-s plan ending at 10.2 s); the incumbent is
    restored as after any rounding that is not cheaper."""
    inst, lns, inc = _blocking_state()
    snapshot = inc.chosen.copy()
    relax = unit_repack.relaxation

    def slow(move, time_limit):
        out = relax(move, time_limit)
        time.sleep(0.3)  # the LP ran to the repack's limit
        return out

    monkeypatch.setattr(unit_repack, "relaxation", slow)
    monkeypatch.setattr(unit_repack, "_round", _drop_all)
    monkeypatch.setattr(LNS, "improve", lambda self, jobs: 0.0)
    calls: list[float] = []
    stats = unit_repack.repack_unit_jobs(lns, time_limit=0.2, min_jobs=0,
                                         repair=lambda lns, left: calls.append(left))
    assert not calls and not stats.moved and stats.gain == 0.0
    assert np.array_equal(inc.chosen, snapshot)


def test_the_repair_runs_at_most_what_the_repack_has_left(monkeypatch) -> None:
    """The solver's repair: the moves for `repack_repair_share` of the time limit, or for what
    the repack has left if that is less."""
    local_search._compile()
    seconds: list[float] = []
    monkeypatch.setattr(local_search, "improve", lambda lns, limit, **kw: seconds.append(limit))
    repair = repack_repair(PlanOptions(repack_repair_share=0.05), 30, 10.0)
    repair(object(), 0.1)
    repair(object(), 3.0)
    assert seconds == [0.1, 0.5]


def test_the_solver_passes_the_moves_as_the_repair_unless_off() -> None:
    """`repack_repair_share`: 0 turns the repair off; otherwise it is the compiled moves."""
    local_search._compile()
    assert repack_repair(PlanOptions(repack_repair_share=0.0), 30, 10.0) is None
    assert callable(repack_repair(PlanOptions(), 30, 10.0))
    assert repack_repair(PlanOptions(local_search_share=0.0), 30, 10.0) is None


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), n_pools=st.integers(2, 5), power=st.booleans(),
       budget=st.booleans(), mixed=st.booleans())
def test_repack_never_worsens_and_keeps_the_plan_feasible(seed, n_pools, power, budget,
                                                          mixed) -> None:
    extra = {} if mixed else {"units": np.ones((30, n_pools))}
    inst = tiny_instance(seed, n_jobs=30, n_pools=n_pools, n_slots=12, capacity=(1, 3),
                         pausable=0.2, power_cap=power, budget=budget, **extra)
    lns, inc = search_state(inst)
    before = inc.objective
    stats = unit_repack.repack_unit_jobs(lns, time_limit=5.0, min_jobs=0)
    assert inc.objective <= before + 1e-9
    assert abs((before - inc.objective) - stats.gain) <= 1e-6
    sched = inc.schedule()
    assert_feasible(inst, sched)
    assert_residuals_match(lns, inc)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), n_pools=st.integers(2, 5), power=st.booleans(),
       budget=st.booleans())
def test_a_repaired_repack_never_worsens_and_keeps_the_plan_feasible(seed, n_pools, power,
                                                                     budget) -> None:
    """The moves' repair from the worst rounding (every unit job out), under site power caps
    and carbon budgets: the plan kept is feasible, never dearer, its residuals exact."""
    local_search._compile()
    inst = tiny_instance(seed, n_jobs=30, n_pools=n_pools, n_slots=12, capacity=(1, 3),
                         pausable=0.2, power_cap=power, budget=budget)
    lns, inc = search_state(inst)
    before = inc.objective
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(unit_repack, "_round", _drop_all)
        mp.setattr(LNS, "improve", lambda self, jobs: 0.0)  # no sub-MIP: the moves repair
        stats = unit_repack.repack_unit_jobs(
            lns, time_limit=5.0, min_jobs=0,
            repair=lambda lns, left: local_search.improve(lns, 0.05, seed=seed, workers=2))
    assert inc.objective <= before + 1e-9
    assert abs((before - inc.objective) - stats.gain) <= 1e-6
    assert_feasible(inst, inc.schedule())
    assert_residuals_match(lns, inc)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), power=st.booleans(), budget=st.booleans())
def test_plans_with_the_repack_are_feasible_and_bounded(seed, power, budget) -> None:
    """The whole pipeline with the repack on (small neighbourhoods so that it runs)."""
    inst = _unit_instance(seed, n_jobs=40, power_cap=power, budget=budget)
    res = plan(inst, time_limit=3.0, rel_gap=1e-6,
               options=PlanOptions(lns_jobs=5, completion_max_jobs=0, restricted_max_jobs=0))
    assert_feasible(inst, res.schedule)
    assert res.result.bound <= res.result.objective + 1e-6
    assert np.isclose(res.evaluation.objective, res.result.objective, rtol=1e-9, atol=1e-7)


def test_the_repack_is_skipped_beyond_its_job_limit() -> None:
    """`repack_max_jobs`: with more unit jobs than that, no repack runs (its LP would cost more
    time than it saves); at or under it, it runs."""
    inst = _unit_instance(3, n_jobs=40)
    seen: dict[int, list[str]] = {}
    for limit in (40, 39):
        messages: list[str] = []
        plan(inst, time_limit=3.0, rel_gap=1e-6,
             options=PlanOptions(lns_jobs=5, completion_max_jobs=0, restricted_max_jobs=0,
                                 repack_max_jobs=limit),
             progress=lambda p, m=messages: m.append(p.message))
        seen[limit] = [m for m in messages if m.startswith("unit jobs repacked")]
    assert seen[40], "the repack ran at its limit"
    assert not seen[39]
