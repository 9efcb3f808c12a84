"""bound.py: the Lagrangian bound is valid for any prices and the ascent only improves it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonplan.planner.bound import ascend
from carbonplan.planner.duals import Duals
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer

from .planner_helpers import brute_force, tiny_instance


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0, 50))
def test_lagrangian_never_exceeds_the_optimum(seed: int, scale: float) -> None:
    inst = tiny_instance(seed, n_jobs=3, n_pools=2, n_slots=8, power_cap=True, budget=True)
    best, _ = brute_force(inst)
    prep = prepare(inst)
    rng = np.random.default_rng(seed)
    y = Duals(beta=-scale * rng.random((2, 8)), pi=-scale * rng.random((1, 8)),
              lam=-scale * 100 * rng.random())
    assert Pricer(prep).price(y).lagrangian <= best + 1e-7


def test_ascent_improves_and_stays_valid() -> None:
    inst = tiny_instance(5, n_jobs=3, n_pools=2, n_slots=8, capacity=(1, 1))
    best, _ = brute_force(inst)
    pricer = Pricer(prepare(inst))
    zero = pricer.price(Duals.zeros(2, 1, 8)).lagrangian
    res = ascend(pricer, Duals.zeros(2, 1, 8), best * 1.1 + 1, max_iter=50)
    assert zero - 1e-9 <= res.bound <= best + 1e-7
    assert res.bound == max(res.history)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_continuation_reports_only_true_bounds(seed: int) -> None:
    """The tie-broken stages steer the duals; what is reported is L(y) of the true costs."""
    from carbonplan.planner.continuation import ascend_by_continuation, tie_broken_pricer
    from carbonplan.planner.policies import greedy_schedule

    inst = tiny_instance(seed, n_jobs=3, n_pools=2, n_slots=8, capacity=(1, 1))
    best, _ = brute_force(inst)
    prep = prepare(inst)
    pricer = Pricer(prep)
    ref = greedy_schedule(prep, pricer)
    res = ascend_by_continuation(pricer, Duals.zeros(2, 1, 8), best * 1.1 + 1, ref,
                                 time_limit=2.0, tol=1e-6)
    assert res.bound <= best + 1e-7
    assert abs(pricer.price(res.duals).lagrangian - res.bound) <= 1e-9 * max(1.0, abs(best))
    assert res.bound >= pricer.price(Duals.zeros(2, 1, 8)).lagrangian - 1e-9
    # a perturbed pricer really is perturbed: moving off the reference costs eps more
    tb = tie_broken_pricer(pricer, (ref.pool, ref.start), 5.0)
    zero = Duals.zeros(2, 1, 8)
    assert tb.price(zero).lagrangian >= pricer.price(zero).lagrangian - 1e-9


def test_ascent_stops_when_it_stalls() -> None:
    """`stall=(k, f)` ends the ascent once k iterations gained less than f of the gap left."""
    inst = tiny_instance(4, n_jobs=4, n_pools=2, n_slots=8, capacity=(1, 1))
    best, _ = brute_force(inst)
    pricer = Pricer(prepare(inst))
    target = best * 10 + 100  # unreachable: without the rule the ascent runs all its iterations
    free = ascend(pricer, Duals.zeros(2, 1, 8), target, max_iter=40)
    assert free.iterations == 40
    # any gain is below 1e9 x the gap left, so the rule stops right at k iterations
    stopped = ascend(pricer, Duals.zeros(2, 1, 8), target, max_iter=40, stall=(5, 1e9))
    assert stopped.iterations == 5
    assert stopped.history == free.history[:6]
    # a rule no gain can fail (f = 0, gains are never negative) leaves the ascent alone
    kept = ascend(pricer, Duals.zeros(2, 1, 8), target, max_iter=40, stall=(5, 0.0))
    assert kept.history == free.history


def test_continuation_applies_the_stall_rule_to_its_true_stage_only() -> None:
    """`stall` ends the last stage, on the true costs, after k idle iterations; the tie-broken
    stages before it run their share (they steer the duals; their own values are not bounds)."""
    from carbonplan.planner.continuation import ascend_by_continuation
    from carbonplan.planner.policies import greedy_schedule

    inst = tiny_instance(4, n_jobs=4, n_pools=2, n_slots=8, capacity=(1, 1))
    best, _ = brute_force(inst)
    prep = prepare(inst)
    pricer = Pricer(prep)
    ref = greedy_schedule(prep, pricer)
    target = best * 10 + 100  # unreachable: only time or the stall rule end a stage
    zero = Duals.zeros(2, 1, 8)
    alone = ascend_by_continuation(pricer, zero, target, ref, time_limit=5.0, tol=1e-9,
                                   stages=(), stall=(5, 1e9))
    assert alone.iterations == 5
    staged = ascend_by_continuation(pricer, zero, target, ref, time_limit=0.5, tol=1e-9,
                                    stages=((0.05, 0.3),), stall=(5, 1e9))
    assert staged.iterations > 10  # the perturbed stage ran ~0.15 s, then 5 true iterations
    assert staged.bound <= best + 1e-7
