"""backends: same objective within the gap on every backend; status tables; registry."""

from __future__ import annotations

import numpy as np
import pytest

from carbonplan.planner.backends import BACKENDS, get_backend
from carbonplan.planner.master import RowLayout, build_master
from carbonplan.planner.registry import UnknownNameError
from carbonplan.planner.result import Termination
from carbonplan.planner.solve import plan

from .planner_helpers import cheapest_columns, tiny_instance

NAMES = ["highs", "pulp", "pyomo"]


def _master(seed: int):
    inst = tiny_instance(seed, n_jobs=8, n_pools=3, n_slots=10, capacity=(1, 3))
    prep, cols = cheapest_columns(inst, 12)
    layout = RowLayout(prep, np.flatnonzero(prep.free))
    return build_master(prep, cols, np.arange(len(cols)), layout)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backends_agree_on_the_integer_master(seed: int) -> None:
    m = _master(seed)
    x0 = np.zeros(m.n_vars)
    x0[m.var_col < 0] = 1.0  # everyone unplanned: feasible
    results = {n: get_backend(n).solve(m, time_limit=20, rel_gap=0.0, warm_start=x0)
               for n in NAMES}
    objs = {n: r.objective for n, r in results.items()}
    for name, r in results.items():
        assert r.termination is Termination.OPTIMAL, (name, r.message)
        assert r.has_solution
        x = np.asarray(r.solution)
        act = m.row_activity(x)
        assert np.all(act <= m.row_upper + 1e-6) and np.all(act >= m.row_lower - 1e-6)
        assert np.isclose(m.objective_of(x), r.objective)
    ref = objs["highs"]
    assert all(np.isclose(v, ref, rtol=1e-6) for v in objs.values()), objs


def _warm_start_trap():
    """The integer master over the completion's columns on the 3-job instance of seed 1477 (a
    carbon budget and pausable jobs), and the plan it was warm-started from, 0.92 $ above the
    optimum. HiGHS 1.16.0 with presolve returned that warm start as "optimal" at 3.60 $."""
    from carbonplan.planner.columns import ColumnSet
    from carbonplan.planner.prepare import prepare

    inst = tiny_instance(1477, n_jobs=3, n_pools=2, n_slots=8, pausable=0.5, budget=True,
                         power_cap=False, owned=False, partial_last_slot=False)
    prep = prepare(inst)
    runs = [(0, 1, [0]), (1, 1, [1, 2, 3]), (1, 0, [2, 5]), (2, 1, [2]), (1, 0, [4, 5]),
            (1, 1, [0, 1, 2]), (2, 1, [1]), (1, 0, [0, 2]), (1, 0, [0, 5]), (1, 1, [0, 1, 3]),
            (1, 1, [0, 2, 3])]
    indptr = np.concatenate([[0], np.cumsum([len(r[2]) for r in runs])])
    cols = ColumnSet.empty()
    which = cols.add(inst, prep.cc, np.array([r[0] for r in runs]),
                     np.array([r[1] for r in runs]), indptr,
                     np.concatenate([r[2] for r in runs]).astype(np.int32))
    m = build_master(prep, cols, which, RowLayout(prep, np.arange(3)))
    x0 = np.zeros(m.n_vars)
    x0[[0, 3, 4]] = 1.0
    return m, x0


def test_a_warm_start_is_not_taken_for_the_optimum() -> None:
    m, x0 = _warm_start_trap()
    best = 7.1411759576034575  # brute force (test_solve.py, seed 1477)
    for warm in (None, x0):
        r = get_backend("highs").solve(m, time_limit=20, rel_gap=0.0, warm_start=warm)
        assert r.termination is Termination.OPTIMAL, r.message
        assert r.objective == pytest.approx(best, rel=1e-9)
        assert m.objective_of(np.asarray(r.solution)) == pytest.approx(best, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_whole_plan_same_objective_within_gap_on_each_backend(name: str) -> None:
    inst = tiny_instance(11, n_jobs=10, n_pools=3, n_slots=10, capacity=(1, 3))
    ref = plan(inst, backend="highs", time_limit=10, rel_gap=0.01).result
    got = plan(inst, backend=name, time_limit=10, rel_gap=0.01).result
    assert got.bound <= got.objective + 1e-6
    # both are within 1% of a common valid bound
    bound = max(ref.bound, got.bound)
    assert got.objective <= bound / (1 - 0.01) + 1e-6 or got.termination is not \
        Termination.GAP_REACHED
    assert abs(got.objective - ref.objective) <= 0.01 * max(ref.objective, got.objective) + 1e-6


def test_capabilities_and_registry() -> None:
    assert set(NAMES) <= set(BACKENDS.names())
    assert get_backend("highs").capabilities.reports_bound
    assert get_backend("pulp").capabilities.warm_start
    assert get_backend("pulp:HiGHS").solver == "HiGHS"
    with pytest.raises(UnknownNameError, match="valid: highs, pulp, pyomo"):
        get_backend("gurobi")
    with pytest.raises(ValueError, match="not available"):
        get_backend("pulp:NOT_A_SOLVER")


def test_time_limited_solve_is_not_optimal() -> None:
    from carbonplan.planner.backends import highs, pulp

    assert highs.STATUS[highs.MS.kTimeLimit] is Termination.TIME_LIMIT
    assert pulp.SOL_STATUS[2] is Termination.TIME_LIMIT  # integer feasible, stopped early


def test_pyomo_status_table() -> None:
    from pyomo.opt import TerminationCondition

    from carbonplan.planner.backends import pyomo

    assert pyomo.TERMINATION[TerminationCondition.maxTimeLimit] is Termination.TIME_LIMIT
    assert pyomo.TERMINATION[TerminationCondition.optimal] is Termination.OPTIMAL
