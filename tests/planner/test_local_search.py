"""local_search.py: compiled relocations and ejections; never worse, always feasible."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonplan.planner import local_search, solve
from carbonplan.planner.columns import ColumnSet, contiguous_slots
from carbonplan.planner.duals import Duals
from carbonplan.planner.lns import Incumbent
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.solve import PlanOptions, plan

from .planner_helpers import assert_feasible, assert_residuals_match, search_state, tiny_instance


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    """Compiled (or loaded from the cache) before any plan here looks for it."""
    local_search._compile()


def one_pool(durations, price, capacity: float):
    """Jobs of one GPU and the given durations on one pool priced `price` per slot, each free to
    run anywhere in the horizon (no spot, no pausing; $1,000 unplanned)."""
    J, T = len(durations), len(price)
    inst = tiny_instance(
        0, n_jobs=J, n_pools=1, n_slots=T, pausable=0.0, spot=False,
        units=np.ones((J, 1)), duration_slots=np.array(durations, np.int32).reshape(J, 1),
        release=np.zeros(J, np.int32), deadline=np.full(J, T, np.int32),
        eligible=np.ones((J, 1), bool), price_usd_per_unit_h=np.array([price], float),
        ci_g_per_kwh=np.full((1, T), 100.0), unplanned_penalty_usd=np.full(J, 1000.0),
        final_share=np.ones((J, 1)))
    return dataclasses.replace(inst, capacity=np.full((1, T), float(capacity)))


def starting_at(starts):
    """A plan for `search_state` on a `one_pool` instance: job j runs from slot starts[j]
    (-1: unplanned)."""
    starts = np.asarray(starts)

    def chosen(prep, cols):
        jobs = np.flatnonzero(starts >= 0)
        indptr, slots = contiguous_slots(starts[jobs], prep.inst.duration_slots[jobs, 0])
        out = np.full(starts.size, -1, np.int64)
        out[jobs] = cols.add(prep.inst, prep.cc, jobs, np.zeros(jobs.size, np.int64), indptr,
                             slots)
        return out

    return chosen


def test_a_blocked_job_is_placed_by_pushing_one_out_of_its_way() -> None:
    """One 1-GPU pool, three slots: job A (one slot) sits in its cheapest slot, the middle one,
    so job B (two slots) fits nowhere and is unplanned. No single job can move to a cheaper
    run that fits (relocation finds nothing); pushing A out of the way of B can."""
    inst = one_pool([1, 2], [2.0, 1.0, 3.0], 1)
    lns, inc = search_state(inst, starting_at([1, -1]))  # A in the middle, B unplanned
    before = inc.objective
    stats = local_search.improve(lns, 0.5, t0=0.0)
    assert (inc.chosen >= 0).all(), "both jobs planned"
    assert stats.gain > 900 and np.isclose(inc.objective, before - stats.gain)
    sched = inc.schedule()
    assert_feasible(inst, sched)
    assert sorted(zip(sched.start, sched.end, strict=True)) in (
        [(0, 2), (2, 3)], [(0, 1), (1, 3)]), "back to back, the two cheapest layouts"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), n_pools=st.integers(1, 4), power=st.booleans(),
       budget=st.booleans(), temperature=st.sampled_from([0.0, 0.5, 50.0]),
       priced=st.booleans(), workers=st.sampled_from([1, 2]))
def test_moves_never_worsen_the_plan_and_keep_it_feasible(seed, n_pools, power, budget,
                                                          temperature, priced, workers) -> None:
    """Capacity, power cap, carbon budget, releases and deadlines hold after any search, at any
    temperature (the best plan seen is adopted, so never a dearer one), with targets drawn by
    reduced costs at zero or at random capacity prices, by one chain or by two on the two sides
    of boundaries that move between short stretches (their merged plans stay feasible together);
    multi-segment runs of pausable jobs stay where they were; the residuals match the plan."""
    inst = tiny_instance(seed, n_jobs=25, n_pools=n_pools, n_slots=10, capacity=(1, 3),
                         pausable=0.3, power_cap=power, budget=budget)
    prices = None
    if priced:
        prices = Duals.zeros(inst.n_pools, len(inst.site_names), inst.n_slots)
        prices.beta[:] = -np.random.default_rng(seed).uniform(0, 5, prices.beta.shape)
    lns, inc = search_state(inst, prices=prices)
    cols = lns.cols
    split = [j for j, c in enumerate(inc.chosen)
             if c >= 0 and np.any(np.diff(cols.column_slots(c)) != 1)]
    kept = inc.chosen[split].copy()
    before = inc.objective
    stats = local_search.improve(lns, 0.2, seed=seed, t0=temperature,
                                 t1=temperature / 100, workers=workers, stretch=0.04)
    assert inc.objective <= before + 1e-9
    assert abs((before - inc.objective) - stats.gain) <= 1e-6
    assert np.array_equal(inc.chosen[split], kept)
    sched = inc.schedule()
    assert_feasible(inst, sched)
    assert_residuals_match(lns, inc)


def test_two_chains_each_improve_their_side_and_both_gains_are_kept() -> None:
    """One 1-GPU pool, eight slots, two 1-slot jobs: A sits in slot 1 with the cheap slot 0
    free, B in slot 6 with the cheap slot 7 free. Split at the middle, A's chain and B's chain
    each find their move; the merged plan has both."""
    inst = one_pool([1, 1], [1.0, 5.0, 4.0, 4.0, 4.0, 4.0, 5.0, 1.0], 1)
    lns, inc = search_state(inst, starting_at([1, 6]))
    stats = local_search.improve(lns, 0.3, t0=0.0, workers=2)
    sched = inc.schedule()
    assert sorted(sched.start.tolist()) == [0, 7]
    assert stats.gain > 0 and stats.attempts > 0
    assert_feasible(inst, sched)
    assert_residuals_match(lns, inc)


def test_shortfall_names_the_slots_and_amounts_a_run_lacks() -> None:
    """A 2-unit, 4-kW run over slots 1-4 of pool 0: capacity short by 1 in slot 2 and by 2 in
    slot 3, power short by 3 kW in slot 4. Only a job spanning slots 2-4 with 2 units and 3 kW
    clears that alone; a job overlapping only slot 1, where the run fits, is not in its way."""
    cap = np.array([[5.0, 2.0, 1.0, 0.0, 2.0, 5.0]])
    power = np.array([[9.0, 9.0, 9.0, 9.0, 1.0, 9.0]])
    site = np.zeros(1, np.int64)
    first, last, need_u, need_kw = local_search._shortfall(cap, power, site, 2.0, 4.0, 0, 1, 5,
                                                           True)
    assert (first, last) == (2, 4)
    assert np.isclose(need_u, 2.0) and np.isclose(need_kw, 3.0)
    assert local_search._shortfall(cap, power, site, 2.0, 4.0, 0, 1, 5, False)[:2] == (2, 3)
    assert local_search._shortfall(cap, power, site, 2.0, 4.0, 0, 0, 2, True)[:2] == (-1, -1)
    # the multi-job ejection's test, slot by slot (`_fits` over the overlap): slot 1 fits,
    # slots 1-2 do not, slot 4 only for lack of power
    assert local_search._fits(cap, power, site, 2.0, 4.0, 0, 1, 1, True)
    assert not local_search._fits(cap, power, site, 2.0, 4.0, 0, 1, 2, True)
    assert not local_search._fits(cap, power, site, 2.0, 4.0, 0, 4, 1, True)
    assert local_search._fits(cap, power, site, 2.0, 4.0, 0, 4, 1, False)


def test_moves_start_more_often_from_jobs_far_above_their_cheapest_run() -> None:
    """Sixty 1-slot jobs sit in their cheapest slot, one sits in a slot $8 dearer with room in
    the cheap one. Drawing jobs uniformly, 20 moves find it one time in four; drawn by excess
    (half the moves), it is found within 20 moves from every seed."""
    T, J = 4, 61
    starts = np.where(np.arange(J) == J - 1, T - 1, 0)
    inst = one_pool([1] * J, [1.0, 9.0, 9.0, 9.0], 100)
    lns, inc = search_state(inst, starting_at(starts))
    d = lns.dense
    for seed in range(10):
        jpool = np.zeros(J, np.int64)
        joff = starts - d.first
        mv = local_search._moves(lns.prep, d, jpool, joff, lns.prep.free.copy(), inc.res, 64)
        gain = local_search.search(mv.cap, mv.power, *mv.fixed, mv.jpool, mv.joff, mv.jcost, 20,
                                   seed, mv.power_on, mv.budget_on, 8, 0.0)
        assert mv.joff[J - 1] + d.first[J - 1] == 0, f"seed {seed}: the dear job stayed"
        assert gain > 7.0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), power=st.booleans(), budget=st.booleans())
def test_plans_with_the_local_search_are_feasible_and_bounded(seed, power, budget) -> None:
    inst = tiny_instance(seed, n_jobs=40, n_pools=4, n_slots=12, capacity=(1, 3),
                         pausable=0.2, power_cap=power, budget=budget)
    messages: list[str] = []
    res = plan(inst, time_limit=2.0, rel_gap=1e-6,
               options=PlanOptions(lns_jobs=5, completion_max_jobs=0, restricted_max_jobs=0),
               progress=lambda p: messages.append(p.message))
    assert any(m.startswith("local search") for m in messages)
    assert_feasible(inst, res.schedule)
    assert res.result.bound <= res.result.objective + 1e-6
    assert np.isclose(res.evaluation.objective, res.result.objective, rtol=1e-9, atol=1e-7)


def _ran_local_search(inst, **options) -> bool:
    messages: list[str] = []
    plan(inst, time_limit=1.0, rel_gap=1e-6,
         options=PlanOptions(lns_jobs=5, completion_max_jobs=0, restricted_max_jobs=0,
                             **options),
         progress=lambda p: messages.append(p.message))
    return any(m.startswith("local search") for m in messages)


def test_off_beyond_its_job_limit_or_share() -> None:
    inst = tiny_instance(4, n_jobs=30, n_pools=3, n_slots=10)
    assert _ran_local_search(inst, local_search_max_jobs=30)
    assert not _ran_local_search(inst, local_search_max_jobs=29)
    assert not _ran_local_search(inst, local_search_share=0.0)


def test_a_cold_cache_never_holds_up_a_plan(monkeypatch) -> None:
    """Not compiled yet: the plan goes on without the moves and starts their compilation in
    the background instead of compiling for seconds inside its time limit."""
    started: list[bool] = []
    monkeypatch.setattr(local_search, "ready", lambda: False)
    monkeypatch.setattr(local_search, "warm_up", lambda: started.append(True))
    inst = tiny_instance(4, n_jobs=30, n_pools=3, n_slots=10)
    assert not _ran_local_search(inst)
    assert started == [True]


def test_warm_up_compiles_into_the_cache(tmp_path) -> None:
    """The background compilation (`python -m carbonplan.planner.local_search`) leaves the
    machine code where a later process finds it: `ready()` there says yes."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    check = [sys.executable, "-c",
             "from carbonplan.planner import local_search as m; print(m.ready())"]
    assert subprocess.run(check, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    subprocess.run([sys.executable, "-m", "carbonplan.planner.local_search"], env=env,
                   check=True, timeout=300)
    assert subprocess.run(check, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_a_cache_of_another_source_is_not_ready(tmp_path) -> None:
    """After an upgrade numba ignores the cached machine code of the old module and would
    compile inside the next plan: `ready()` says no until the warm-up has cached the new one."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-m", "carbonplan.planner.local_search"], env=env,
                   check=True, timeout=300)
    restamp = (
        "import pickle\n"
        "from carbonplan.planner import local_search as m\n"
        "f = m.search._cache._cache_file\n"
        "print(m.ready())\n"
        "with open(f._index_path, 'rb') as fh:\n"
        "    version = pickle.load(fh); stamp, overloads = pickle.loads(fh.read())\n"
        "with open(f._index_path, 'wb') as fh:\n"
        "    pickle.dump(version, fh, protocol=-1)\n"
        "    fh.write(pickle.dumps(((0.0, 0), overloads), protocol=-1))\n"
        "print(m.ready())\n")
    out = subprocess.run([sys.executable, "-c", restamp], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "False"]


def test_it_stops_once_the_plan_reaches_the_target() -> None:
    """A plan already at the target (the objective that closes the gap) is left alone at once;
    an unreachable target gets the whole time."""
    inst = tiny_instance(7, n_jobs=25, n_pools=3, n_slots=10, pausable=0.0)
    lns, inc = search_state(inst)
    stats = local_search.improve(lns, 5.0, target=inc.objective)
    assert stats.attempts == 0 and stats.gain == 0.0 and stats.seconds < 1.0
    stats = local_search.improve(lns, 0.3, target=-np.inf)
    assert stats.attempts > 0 and stats.seconds >= 0.3


def test_beside_column_generation_the_plan_stays_feasible_and_bounded() -> None:
    """Started at the first column-generation iteration on a second core, its plan competes
    with the dual-priced greedy's; the plan that comes out respects every constraint."""
    inst = tiny_instance(11, n_jobs=60, n_pools=4, n_slots=12, capacity=(1, 3), pausable=0.2,
                         power_cap=True, budget=True)
    messages: list[str] = []
    res = plan(inst, time_limit=3.0, rel_gap=1e-6,
               options=PlanOptions(lns_jobs=5, completion_max_jobs=0, restricted_max_jobs=10,
                                   background_lp_gap=1.0),
               progress=lambda p: messages.append(p.message))
    if solve.background_ready(PlanOptions(), 60):
        assert any(m.startswith("local search beside column generation") for m in messages)
    assert_feasible(inst, res.schedule)
    assert res.result.bound <= res.result.objective + 1e-6
    assert np.isclose(res.evaluation.objective, res.result.objective, rtol=1e-9, atol=1e-7)


def test_background_plan_is_feasible_and_no_worse_than_its_greedy_start() -> None:
    inst = tiny_instance(12, n_jobs=40, n_pools=3, n_slots=10, capacity=(1, 3), pausable=0.0,
                         power_cap=True)
    prep = prepare(inst)
    pricer = Pricer(prep)
    y = Duals.zeros(inst.n_pools, len(inst.site_names), inst.n_slots)
    cols = ColumnSet.empty()
    greedy = Incumbent(prep, cols, solve.dual_greedy(prep, pricer, cols, y, rounds=1)[0])
    moving = local_search.Background(prep, pricer, y, time_limit=0.5, seed=3)
    time.sleep(0.3)
    inc, moves = solve.adopt_background(prep, cols, greedy, moving)
    assert moves > 0
    assert inc.objective <= greedy.objective + 1e-9
    assert_feasible(inst, inc.schedule())


def test_background_fails_open() -> None:
    """A failure in the background thread leaves the plan as it was."""
    inst = tiny_instance(13, n_jobs=20, n_pools=2, n_slots=8)
    prep = prepare(inst)

    class Broken:
        def dense(self, duals):
            raise RuntimeError("boom")

    moving = local_search.Background(prep, Broken(), None, time_limit=1.0)
    assert moving.result() is None
    cols = ColumnSet.empty()
    start = Incumbent(prep, cols, np.full(prep.n_jobs, -1, np.int64))
    assert solve.adopt_background(prep, cols, start, moving) == (start, 0)


def test_no_second_core_no_background(monkeypatch) -> None:
    assert solve.background_ready(PlanOptions(), 500)  # compiled (fixture), two cores here
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not solve.background_ready(PlanOptions(), 500)
    monkeypatch.undo()
    assert not solve.background_ready(PlanOptions(background_moves=False), 500)
    assert not solve.background_ready(PlanOptions(), 200)  # the restricted master's range


def test_a_plan_does_not_wait_for_a_background_still_setting_up() -> None:
    """Column generation may end right after the background started: the plan goes on without
    it rather than waiting for its set-up, and the thread ends by itself."""
    inst = tiny_instance(14, n_jobs=20, n_pools=2, n_slots=8)
    prep = prepare(inst)
    pricer = Pricer(prep)

    class Slow:
        def dense(self, duals):
            time.sleep(1.0)
            return pricer.dense(duals)

    moving = local_search.Background(prep, Slow(), None, time_limit=5.0)
    t = time.perf_counter()
    assert moving.result() is None
    assert time.perf_counter() - t < 0.5
    moving._thread.join(5.0)
    assert not moving._thread.is_alive() and moving.mv.attempts == 0
