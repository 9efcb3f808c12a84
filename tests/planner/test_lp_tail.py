"""Column generation's next LP beside the primal steps (lp_tail.py): it gives the bound the
next iteration would have given, only where column generation left columns unsolved, and fails
open. The LPs are real; column generation's clock is simulated (as in test_cg_time.py), so
where it stops does not depend on the machine's speed."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest

from carbonplan.planner import master
from carbonplan.planner.cg import column_generation
from carbonplan.planner.lp_tail import LPTail
from carbonplan.planner.pricing import Pricer

from .planner_helpers import priced_start, tiny_instance


@pytest.fixture
def clock(clock):
    """Every LP takes 0.4 simulated seconds of column generation's clock (conftest.py)."""
    clock.lp = 0.4
    return clock


def start(seed: int = 8, **kw):
    # 40 jobs on 1-2-unit pools: seven iterations before the LP and the bound meet
    return priced_start(tiny_instance(seed, n_jobs=40, n_pools=3, n_slots=12, capacity=(1, 2),
                                      **kw))


def run(begin, time_limit: float):
    prep, pricer, res0, cols, initial = begin
    return column_generation(prep, pricer, cols, initial, res0.duals, res0.lagrangian,
                             time_limit=time_limit, tol=1e-9, smoothing=0.0)


def test_the_tail_gives_the_bound_of_the_next_iteration(clock) -> None:
    cut = run(start(), 0.8)  # two LPs, then stopped by time with the third's columns priced in
    assert cut.iterations == 3 and cut.live is not None
    tail = LPTail(Pricer(cut.live.prep), cut.live, cut.method, until=time.perf_counter() + 60)
    got = tail.bound(wait=60)
    assert got is not None
    clock.now = 0.0
    full = run(start(), 1.2)  # the same start, one LP more
    assert full.history[2][0] > cut.bound  # (the third LP lifts the bound on this instance)
    assert max(cut.bound, got) == pytest.approx(full.history[2][0], rel=1e-9)


def test_the_tail_bound_never_exceeds_the_lp_optimum(clock) -> None:
    checked = 0
    for seed in (3, 8, 11):
        cut = run(start(seed), 0.4)  # one LP, the second's columns priced in
        if cut.live is None:
            continue
        got = LPTail(Pricer(cut.live.prep), cut.live, cut.method,
                     until=time.perf_counter() + 60).bound(wait=60)
        assert got is not None
        clock.now = 0.0
        converged = run(start(seed), 100.0)  # nothing prices below zero: the LP optimum
        assert converged.live is None
        assert got <= converged.lp_objective + 1e-6 * abs(converged.lp_objective)
        checked += 1
    assert checked


def test_nothing_is_left_when_column_generation_converged(clock) -> None:
    out = run(start(), 100.0)
    assert out.live is None


def test_a_failing_lp_leaves_no_bound(clock, monkeypatch) -> None:
    cut = run(start(), 0.8)
    assert cut.live is not None

    def broken(self, **kw):
        raise RuntimeError("HiGHS went away")

    monkeypatch.setattr(master.LiveLP, "solve", broken)
    tail = LPTail(Pricer(cut.live.prep), cut.live, cut.method, until=time.perf_counter() + 60)
    assert tail.bound(wait=60) is None


def test_no_bound_after_its_time(clock) -> None:
    cut = run(start(), 0.8)
    tail = LPTail(Pricer(cut.live.prep), cut.live, cut.method, until=time.perf_counter() - 1.0)
    assert tail.bound(wait=60) is None


class _BigLP:
    """A real LP that interior point takes seconds over (200,000 columns on 6,000 rows),
    behind the two things the tail uses of a live master."""

    def __init__(self) -> None:
        import highspy

        from carbonplan.planner.highs_threads import new_model, run

        n, m, nnz = 200_000, 6_000, 8
        rng = np.random.default_rng(0)
        h = new_model()
        h.addRows(m, np.ones(m), np.full(m, highspy.kHighsInf), 0, np.zeros(0, np.int32),
                  np.zeros(0, np.int32), np.zeros(0))
        idx = np.sort((np.arange(n)[:, None] * 7 + np.arange(nnz)[None, :] * 373) % m, axis=1)
        h.addCols(n, rng.uniform(1, 2, n), np.zeros(n), np.full(n, highspy.kHighsInf), n * nnz,
                  (np.arange(n) * nnz).astype(np.int32), idx.ravel().astype(np.int32),
                  rng.uniform(0.5, 1, n * nnz))
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "off")
        self.h, self._run, self.solves = h, run, 0

    def solve(self, *, method: str, time_limit: float):
        self.solves += 1
        self._run(self.h)
        return types.SimpleNamespace(result=types.SimpleNamespace(termination=None))


def test_stop_ends_a_running_lp() -> None:
    import highspy

    big = _BigLP()
    prep = start()[0]
    tail = LPTail(Pricer(prep), big, "ipm", until=time.perf_counter() + 600)
    while big.solves == 0:  # (the thread has reached the solve)
        time.sleep(0.01)
    tail.stop()
    assert tail.bound(wait=600) is None
    assert big.h.getModelStatus() == highspy.HighsModelStatus.kInterrupt
