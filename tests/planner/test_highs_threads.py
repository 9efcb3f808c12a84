"""highs_threads.py: carbonplan's HiGHS models solve whatever thread pool the process has."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import carbonplan


@pytest.mark.parametrize("pool_threads", [1, 2])
def test_plans_solve_after_another_thread_count_took_the_pool(pool_threads: int) -> None:
    """HiGHS 1.16 fixes the size of the process's thread pool at the first run (here a model
    asking for `pool_threads`; Pyomo's appsi_highs asks for the default, two on two cores).
    The integer master and the column generation's LP still solve, and the plan is the
    brute-force optimum. In a fresh process, so that no earlier test has set the pool."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        import highspy, numpy as np
        from planner.planner_helpers import brute_force, cheapest_columns, tiny_instance
        from carbonplan.planner.backends import get_backend
        from carbonplan.planner.master import RowLayout, build_master
        from carbonplan.planner.result import Termination
        from carbonplan.planner.solve import PlanOptions, plan

        first = highspy.Highs()
        first.setOptionValue("output_flag", False)
        first.setOptionValue("threads", {pool_threads})
        first.addVars(1, np.zeros(1), np.ones(1))
        first.run()
        assert first.getModelStatus() == highspy.HighsModelStatus.kOptimal

        inst = tiny_instance(7, n_jobs=3, n_pools=2, n_slots=8, pausable=0.0,
                             units=np.ones((3, 2)))
        best, _ = brute_force(inst)
        prep, cols = cheapest_columns(inst, 12)
        m = build_master(prep, cols, np.arange(len(cols)), RowLayout(prep, np.arange(3)))
        for threads in (1, 2):
            r = get_backend("highs", threads=threads).solve(m, time_limit=5, rel_gap=0.0)
            assert r.termination is Termination.OPTIMAL, r.message
        for backend in ("highs", get_backend("highs", threads=2)):
            res = plan(inst, backend=backend, time_limit=5.0, rel_gap=0.0,
                       options=PlanOptions(completion_max_jobs=0, restricted_max_jobs=0,
                                           repack_rounds=1))
            assert np.isfinite(res.lp_objective), "the column generation's LP solved"
            assert abs(res.result.objective - best) <= 1e-6 * max(1.0, best), (
                res.result.objective, best, res.result.message)
        print("ok")
    """)
    src = str(Path(carbonplan.__file__).parents[1])  # the carbonplan under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
