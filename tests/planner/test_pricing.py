"""pricing.py: vectorized pricing equals brute force over every column, for any duals."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonplan.planner.columns import ColumnSet
from carbonplan.planner.duals import Duals
from carbonplan.planner.lns import column_reduced_costs
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer

from .planner_helpers import all_columns, tiny_instance


def _random_duals(inst, seed: int) -> Duals:
    rng = np.random.default_rng(seed)
    S = len(inst.site_names)
    beta = -rng.uniform(0, 3, (inst.n_pools, inst.n_slots)) * (rng.random((inst.n_pools,
                                                                           inst.n_slots)) < 0.5)
    pi = -rng.uniform(0, 3, (S, inst.n_slots)) * (rng.random((S, inst.n_slots)) < 0.5)
    return Duals(beta=beta, pi=pi, lam=-float(rng.uniform(0, 500)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), pausable=st.sampled_from([0.0, 0.5, 1.0]),
       budget=st.booleans(), power=st.booleans())
def test_pricing_matches_brute_force(seed: int, pausable: float, budget: bool,
                                     power: bool) -> None:
    inst = tiny_instance(seed, n_jobs=3, n_pools=3, n_slots=8, pausable=pausable,
                         budget=budget, power_cap=power)
    prep = prepare(inst)
    pricer = Pricer(prep)
    y = _random_duals(inst, seed)
    res = pricer.price(y)
    for j in range(inst.n_jobs):
        cols = ColumnSet.empty()
        found = all_columns(inst, j)
        best = {}
        for p, slots in found:
            idx = cols.add(inst, prep.cc, np.array([j]), np.array([p]),
                           np.array([0, len(slots)]), slots)
            rc = float(column_reduced_costs(prep, cols, idx, y)[0])
            best[p] = min(best.get(p, np.inf), rc)
        for p in range(inst.n_pools):
            assert np.isclose(res.pair_rc[j, p], best.get(p, np.inf), rtol=1e-9, atol=1e-9) or (
                np.isinf(res.pair_rc[j, p]) and np.isinf(best.get(p, np.inf)))
        job_best = min([prep.penalty[j]] + list(best.values()))
        assert np.isclose(res.job_rc[j], job_best)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_priced_columns_have_the_priced_cost(seed: int) -> None:
    inst = tiny_instance(seed, n_jobs=4, n_pools=3, n_slots=8, pausable=0.5)
    prep = prepare(inst)
    pricer = Pricer(prep)
    y = _random_duals(inst, seed + 1)
    res = pricer.price(y)
    # later pricings (the bound's thread prices on the same pricer) leave `res` readable
    pricer.price(_random_duals(inst, seed + 2))
    pricer.price(_random_duals(inst, seed + 3), keep_paths=False)
    jj, pp = np.nonzero(np.isfinite(res.pair_rc))
    indptr, slots = pricer.columns(res, jj, pp)
    cols = ColumnSet.empty()
    idx = cols.add(inst, prep.cc, jj, pp, indptr, slots)
    rc = column_reduced_costs(prep, cols, idx, y)
    assert np.allclose(rc, res.pair_rc[jj, pp])
    # every materialized column is inside its window and has the right amount of work
    for k, (j, p) in enumerate(zip(jj, pp, strict=True)):
        s = slots[indptr[k]:indptr[k + 1]]
        assert s.min() >= inst.release[j]
        assert s.max() < prep.win.latest_end[j, p]
        gaps = int((np.diff(s) > 1).sum())
        assert len(s) - gaps * inst.resume_slots[j] == inst.duration_slots[j, p]
        if not inst.pausable[j]:
            assert gaps == 0


def test_pausable_resume_costs_extra_slots() -> None:
    # one pausable job of 3 work slots, resume costs 1 slot. Slots 0, 1, 4 are free, slot 3
    # costs 4, the rest 10: the best run works in 0-1, resumes in 3 (paid) and works in 4.
    inst = tiny_instance(0, n_jobs=1, n_pools=1, n_slots=6, pausable=1.0, spot=False)
    import dataclasses

    price = np.full((1, 6), 10.0)
    price[0, [0, 1, 4]] = 0.0
    price[0, 3] = 4.0
    inst = dataclasses.replace(
        inst, price_usd_per_unit_h=price, eligible=np.ones((1, 1), bool),
        duration_slots=np.array([[3]], np.int32), release=np.array([0], np.int32),
        deadline=np.array([6], np.int32), pausable=np.array([True]),
        resume_slots=np.array([1], np.int32), units=np.ones((1, 1)),
        power_kw=np.full((1, 1), 1e-6), embodied_kg_per_unit_h=np.zeros(1),
        unplanned_penalty_usd=np.array([1000.0]))
    prep = prepare(inst)
    pricer = Pricer(prep)
    res = pricer.price(Duals.zeros(1, 1, 6))
    indptr, slots = pricer.columns(res, np.array([0]), np.array([0]))
    assert slots.tolist() == [0, 1, 3, 4]
    assert abs(res.pair_rc[0, 0] - 4.0) < 1e-3
