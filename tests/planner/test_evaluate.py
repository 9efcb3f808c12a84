"""evaluate.py: one evaluator; it matches the planner's objective and flags every violation."""

from __future__ import annotations

import dataclasses

import numpy as np

from carbonplan.planner.columns import Schedule
from carbonplan.planner.evaluate import evaluate
from carbonplan.planner.solve import plan

from .planner_helpers import tiny_instance


def test_matches_plan_objective() -> None:
    inst = tiny_instance(12, n_jobs=8, n_pools=3, n_slots=10, budget=True)
    res = plan(inst, time_limit=2.0)
    ev = evaluate(inst, res.schedule)
    assert np.isclose(ev.objective, res.result.objective)
    assert np.isclose(ev.cost_usd + inst.carbon_price_usd_per_t * ev.t_co2e
                      + ev.penalty_usd + ev.move_usd, ev.objective)
    assert np.isclose(ev.t_co2e, ev.t_operational + ev.t_embodied)
    assert ev.n_planned + ev.n_unplanned == inst.n_jobs


def test_flags_violations() -> None:
    inst = tiny_instance(13, n_jobs=3, n_pools=2, n_slots=8)
    inst = dataclasses.replace(inst, capacity=np.ones((2, 8)), units=np.ones((3, 2)),
                               eligible=np.ones((3, 2), bool),
                               duration_slots=np.full((3, 2), 2, np.int32),
                               release=np.array([2, 0, 0], np.int32),
                               deadline=np.array([8, 3, 8], np.int32),
                               pausable=np.zeros(3, bool))
    # job0 starts before release; job1 ends after deadline; job2 overlaps job1 on pool 0
    sched = Schedule.from_starts(inst, np.array([0, 0, 0]), np.array([0, 2, 3]))
    ev = evaluate(inst, sched)
    assert ev.n_early == 1
    assert ev.n_late == 1
    assert ev.capacity_violations >= 1
    assert not ev.feasible
    # a pause in a job that cannot pause is invalid
    bad = Schedule(pool=np.array([1, -1, -1], np.int32), indptr=np.array([0, 2, 2, 2]),
                   slots=np.array([2, 5], np.int32))
    assert evaluate(inst, bad).n_invalid == 1


def test_late_jobs_pay_the_penalty() -> None:
    inst = tiny_instance(14, n_jobs=1, n_pools=1, n_slots=8, spot=False)
    inst = dataclasses.replace(inst, eligible=np.ones((1, 1), bool),
                               duration_slots=np.array([[2]], np.int32),
                               release=np.array([0], np.int32), deadline=np.array([3], np.int32))
    on_time = evaluate(inst, Schedule.from_starts(inst, np.array([0]), np.array([1])))
    late = evaluate(inst, Schedule.from_starts(inst, np.array([0]), np.array([5])))
    assert late.n_late == 1 and on_time.n_late == 0
    assert late.penalty_usd == inst.unplanned_penalty_usd[0]
