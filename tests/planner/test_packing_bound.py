"""packing_bound.py: large jobs kept integral under the pool capacities lift the bound, validly.

And column generation survives an interior-point LP that stops short (HiGHS "Unknown").
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonplan.planner import master
from carbonplan.planner.cg import column_generation
from carbonplan.planner.duals import Duals
from carbonplan.planner.packing_bound import (
    PackingOracle,
    large_jobs,
    packing_bound,
    packing_column_generation,
)
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.result import Termination
from carbonplan.planner.solve import plan

from .planner_helpers import brute_force, priced_start, tiny_instance


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0, 50))
def test_the_packing_bound_never_exceeds_the_optimum(seed: int, scale: float) -> None:
    inst = tiny_instance(seed, n_jobs=4, n_pools=2, n_slots=8, capacity=(1, 3),
                         power_cap=seed % 2 == 0, budget=seed % 3 == 0)
    best, _ = brute_force(inst)
    prep = prepare(inst)
    pricer = Pricer(prep)
    rng = np.random.default_rng(seed)
    res = pricer.price(Duals(beta=-scale * rng.random((2, 8)), pi=-scale * rng.random((1, 8)),
                             lam=-scale * 100 * rng.random()))
    jobs = large_jobs(prep)
    got = PackingOracle(prep, pricer, jobs).evaluate(res, 10.0) if jobs.size else None
    if got is not None:
        assert res.lagrangian - 1e-7 <= got <= best + 1e-7


def test_when_every_job_is_large_the_bound_at_zero_prices_is_the_optimum() -> None:
    """Three 2-GPU jobs, one 3-GPU pool: the LP runs 1.5 jobs at a time in the cheap slots, no
    plan can; with all three packed as integers the bound is the optimum itself."""
    base = tiny_instance(1, n_jobs=3, n_pools=1, n_slots=6, pausable=0.0, spot=False,
                         partial_last_slot=False)
    inst = dataclasses.replace(
        base, capacity=np.full((1, 6), 3.0), units=np.full((3, 1), 2.0),
        duration_slots=np.full((3, 1), 2, dtype=np.int32), eligible=np.ones((3, 1), bool),
        release=np.zeros(3, dtype=np.int32), deadline=np.full(3, 6, dtype=np.int32),
        price_usd_per_unit_h=np.array([[1.0, 1.0, 2.0, 2.0, 8.0, 8.0]]),
        unplanned_penalty_usd=np.full(3, 500.0))
    best, _ = brute_force(inst)
    prep = prepare(inst)
    pricer = Pricer(prep)
    assert large_jobs(prep).tolist() == [0, 1, 2]
    zero = pricer.price(Duals.zeros(1, 1, 6))
    bound = packing_bound(prep, pricer, zero, time_limit=10.0)
    assert bound is not None and abs(bound - best) <= 1e-6 * best
    # the LP bound of the same instance stays below: plan() alone cannot certify it
    lp = plan(inst, time_limit=5.0, rel_gap=1e-9).lp_objective
    assert lp < best - 1.0


def test_no_large_jobs_no_packing_bound() -> None:
    inst = tiny_instance(2, n_jobs=4, n_pools=2, n_slots=8, capacity=(6, 6),
                         units=np.ones((4, 2)))
    prep = prepare(inst)
    pricer = Pricer(prep)
    assert large_jobs(prep).size == 0
    assert packing_bound(prep, pricer, pricer.price(Duals.zeros(2, 1, 8)),
                         time_limit=5.0) is None


def test_column_generation_goes_on_when_the_interior_point_lp_stops_short(monkeypatch
                                                                          ) -> None:
    inst = tiny_instance(7, n_jobs=8, n_pools=3, n_slots=12, capacity=(1, 2))

    def run(fail_ipm: bool):
        prep, pricer, res0, cols, initial = priced_start(inst)
        return column_generation(prep, pricer, cols, initial, res0.duals, res0.lagrangian,
                                 time_limit=30.0, tol=1e-9, smoothing=0.0, ipm_from=0)

    solve = master.LiveLP.solve

    def stops_short(self, *, method: str = "simplex", time_limit: float = np.inf):
        sol = solve(self, method=method, time_limit=time_limit)
        if method == "ipm":  # what IPX without crossover reports when short of tolerance
            sol = dataclasses.replace(sol, result=dataclasses.replace(
                sol.result, termination=Termination.ERROR))
        return sol

    plain = run(False)
    monkeypatch.setattr(master.LiveLP, "solve", stops_short)
    shaken = run(True)
    assert shaken.iterations == plain.iterations > 1
    assert abs(shaken.bound - plain.bound) <= 1e-6 * max(1.0, abs(plain.bound))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_packing_column_generation_stays_valid_and_beats_the_first_packing(seed: int) -> None:
    inst = tiny_instance(seed, n_jobs=5, n_pools=2, n_slots=8, capacity=(2, 3))
    best, _ = brute_force(inst)
    prep, pricer, res, cols, support = priced_start(inst)
    first = packing_bound(prep, pricer, res, time_limit=10.0)
    got = packing_column_generation(prep, pricer, cols, support, res, best, time_limit=10.0,
                                    min_gain=0.0)
    if got is not None:
        assert res.lagrangian - 1e-7 <= got <= best + 1e-7
        if first is not None:
            assert got >= first - 1e-7
