"""explain.py: reasons for unplanned jobs, alternatives with deltas, infeasible-alone check."""

from __future__ import annotations

import dataclasses

import numpy as np

from carbonplan.planner.columns import Schedule
from carbonplan.planner.explain import explain_job, infeasible_alone
from carbonplan.planner.instance import ON_DEMAND, SPOT
from carbonplan.planner.solve import plan

from .planner_helpers import tiny_instance


def _base(**kw):
    inst = tiny_instance(40, n_jobs=2, n_pools=2, n_slots=8, spot=False)
    fields = dict(eligible=np.ones((2, 2), bool), duration_slots=np.full((2, 2), 3, np.int32),
                  release=np.zeros(2, np.int32), deadline=np.full(2, 8, np.int32),
                  units=np.ones((2, 2)), capacity=np.ones((2, 8)), pausable=np.zeros(2, bool),
                  unplanned_penalty_usd=np.full(2, 1e4), site=np.array([0, 0], np.int32),
                  market=np.array([ON_DEMAND, ON_DEMAND], np.int8))
    fields.update(kw)
    return dataclasses.replace(inst, **fields)


def test_infeasible_alone_reasons() -> None:
    assert infeasible_alone(_base(), 0) is None
    tight = _base(deadline=np.array([2, 8], np.int32))
    assert infeasible_alone(tight, 0).code == "deadline"
    big = _base(units=np.full((2, 2), 5.0))
    assert infeasible_alone(big, 0).code == "capacity-alone"
    none = _base(eligible=np.array([[False, False], [True, True]]))
    assert infeasible_alone(none, 0).code == "no-eligible-pool"
    capped = _base(power_cap_kw=np.full((1, 8), 0.01))
    assert infeasible_alone(capped, 0).code == "power-cap-alone"
    budget = _base(carbon_budget_t=1e-12)
    assert infeasible_alone(budget, 0).code == "carbon-budget-alone"
    cheap = _base(unplanned_penalty_usd=np.full(2, 1e-6))
    assert infeasible_alone(cheap, 0).code == "cost"
    spot_only = _base(market=np.array([SPOT, SPOT], np.int8),
                      eviction_rate_per_h=np.array([0.05, 0.05]))
    assert infeasible_alone(spot_only, 0).code == "deadline"


def test_unplanned_because_capacity_is_taken() -> None:
    inst = _base(deadline=np.array([4, 4], np.int32), eligible=np.array([[True, False],
                                                                         [True, False]]))
    res = plan(inst, time_limit=2.0)
    unplanned = np.flatnonzero(res.schedule.pool < 0)
    assert unplanned.size == 1
    ex = explain_job(inst, res.schedule, int(unplanned[0]))
    assert not ex.planned and ex.reason.code == "capacity"


def test_planned_job_beats_its_alternatives() -> None:
    inst = tiny_instance(41, n_jobs=6, n_pools=4, n_slots=10, capacity=(3, 5))
    res = plan(inst, time_limit=2.0, rel_gap=0.0)
    for j in np.flatnonzero(res.schedule.pool >= 0):
        ex = explain_job(inst, res.schedule, int(j))
        assert ex.planned and ex.chosen.pool == res.schedule.pool[j]
        assert np.isclose(ex.chosen.objective, res.evaluation.per_job.objective[j])
        for alt in ex.alternatives:
            assert np.isclose(alt.delta_objective, alt.objective - ex.chosen.objective)
            if alt.fits:
                # an optimal plan cannot gain by moving a single job to a free alternative
                assert alt.delta_objective >= -1e-6, alt
        labels = {a.label for a in ex.alternatives}
        assert "run-now" in labels


def test_explain_unplanned_when_not_worth_it() -> None:
    inst = _base(unplanned_penalty_usd=np.array([1e-6, 1e4]))
    sched = Schedule.unplanned(2)
    assert explain_job(inst, sched, 0).reason.code == "cost"
