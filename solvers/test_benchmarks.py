"""pytest-benchmark benchmarks of the planner's core pieces (not part of the default test run:
pytest's testpaths is tests/, and pyproject passes --benchmark-disable).

    pytest solvers/test_benchmarks.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import pytest

from carbonplan.planner.cg import add_priced_columns, best_pairs
from carbonplan.planner.columns import ColumnSet
from carbonplan.planner.duals import Duals
from carbonplan.planner.master import LiveLP, RowLayout
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.solve import plan
from solvers.generator import synthetic_instance


@pytest.fixture(scope="module")
def mid():
    inst = synthetic_instance(1000, 12, 72, seed=1)
    prep = prepare(inst)
    return inst, prep, Pricer(prep)


def test_pricing_1000x12x72(benchmark, mid) -> None:
    inst, prep, pricer = mid
    rng = np.random.default_rng(0)
    y = Duals(beta=-rng.random((inst.n_pools, inst.n_slots)),
              pi=np.zeros((len(inst.site_names), inst.n_slots)))
    res = benchmark(pricer.price, y)
    assert np.isfinite(res.lagrangian)


def test_master_lp_1000x12x72(benchmark, mid) -> None:
    inst, prep, pricer = mid
    res = pricer.price(Duals.zeros(inst.n_pools, len(inst.site_names), inst.n_slots))
    cols = ColumnSet.empty()
    jobs, pools = best_pairs(res, 3)
    idx = add_priced_columns(pricer, res, cols, jobs, pools)

    def solve():
        lp = LiveLP(prep, RowLayout(prep, np.flatnonzero(prep.free)))
        lp.add_columns(cols, idx)
        return lp.solve(method="ipm")

    sol = benchmark.pedantic(solve, rounds=3, iterations=1)
    assert np.isfinite(sol.result.objective)


def test_plan_300x8x48(benchmark) -> None:
    inst = synthetic_instance(300, 8, 48, seed=2)
    res = benchmark.pedantic(lambda: plan(inst, time_limit=10.0, rel_gap=0.01), rounds=1,
                             iterations=1)
    assert res.evaluation.feasible
