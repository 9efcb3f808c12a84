"""restricted_bound.py: the restricted integer master gives real plans and valid bounds.

Checked against brute-force enumeration of every schedule on tiny instances with pausable jobs
and tight capacity (the case the LP bound is weak in), and on the pruned pausable enumeration.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonplan.planner.columns import ColumnSet
from carbonplan.planner.duals import Duals
from carbonplan.planner.lns import Incumbent
from carbonplan.planner.pausable_enum import pausable_columns_under, slot_reduced_costs
from carbonplan.planner.policies import greedy_schedule
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.restricted_bound import restricted_bound, restricted_plan, within_gap
from carbonplan.planner.solve import PlanOptions, adopt, enumerate_pausable, plan

from .planner_helpers import assert_feasible, brute_force, tiny_instance


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0, 5))
def test_restricted_master_bound_and_plan_are_valid(seed: int, scale: float) -> None:
    inst = tiny_instance(seed, n_jobs=4, n_pools=2, n_slots=8, pausable=0.6, capacity=(1, 2))
    best, _ = brute_force(inst)
    prep = prepare(inst)
    pricer = Pricer(prep)
    cols = ColumnSet.empty()
    inc = Incumbent(prep, cols, adopt(prep, cols, greedy_schedule(prep, pricer)))
    rng = np.random.default_rng(seed)
    duals = Duals(beta=-scale * rng.random((2, 8)), pi=np.zeros((1, 8)), lam=0.0)
    pricing = pricer.price(duals)
    exact, pj, pp, delta = within_gap(prep, pricer, cols, inc.objective, duals, pricing)
    before = inc.objective
    restricted_plan(prep, cols, inc, exact, time_limit=5.0)
    assert inc.objective <= before + 1e-9
    assert inc.objective >= best - 1e-7  # a real plan: never below the optimum
    assert_feasible(inst, inc.schedule())
    rb = restricted_bound(prep, cols, before, exact, pj, pp, delta, time_limit=5.0,
                          max_columns=100_000)
    assert rb <= best + 1e-7


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_plans_proved_optimal_are_optimal(seed: int) -> None:
    inst = tiny_instance(seed, n_jobs=4, n_pools=2, n_slots=8, pausable=0.6, capacity=(1, 2))
    best, _ = brute_force(inst)
    res = plan(inst, time_limit=5.0, rel_gap=1e-9,
               options=PlanOptions(completion_max_jobs=0))  # the restricted master alone
    assert res.result.bound <= best + 1e-7
    assert res.result.objective >= best - 1e-7
    if res.result.gap <= 1e-9:
        assert abs(res.result.objective - best) <= 1e-6 * max(1.0, abs(best))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0, 3), cut=st.floats(0, 1))
def test_pruned_pausable_enumeration_keeps_every_column_under_the_limit(seed: int, scale: float,
                                                                        cut: float) -> None:
    inst = tiny_instance(seed, n_jobs=2, n_pools=2, n_slots=10, pausable=1.0)
    prep = prepare(inst)
    rng = np.random.default_rng(seed)
    duals = Duals(beta=-scale * rng.random((2, 10)), pi=np.zeros((1, 10)), lam=0.0)
    for j, p in zip(*np.nonzero(inst.eligible), strict=True):
        lo, rt, last_off = slot_reduced_costs(prep, int(j), int(p), duals)
        ip, sl = enumerate_pausable(prep, int(j), int(p))
        every = [tuple(sl[ip[i]:ip[i + 1]]) for i in range(len(ip) - 1)]
        costs = [float(rt[np.asarray(c) - lo].sum() - last_off[c[-1] - lo]) for c in every]
        limit = float(np.quantile(costs, cut)) if costs else 0.0
        ip2, sl2 = pausable_columns_under(prep, int(j), int(p), duals, limit,
                                          max_columns=10_000)
        got = {tuple(sl2[ip2[i]:ip2[i + 1]]) for i in range(len(ip2) - 1)}
        want = {c for c, k in zip(every, costs, strict=True) if k <= limit + 1e-9}
        assert got == want
