"""replan.py: frozen jobs stay where they are, moved announced jobs pay the penalty."""

from __future__ import annotations

import dataclasses

import numpy as np

from carbonplan.planner.evaluate import evaluate
from carbonplan.planner.replan import replan, with_previous
from carbonplan.planner.solve import plan

from .planner_helpers import assert_feasible, tiny_instance


def test_frozen_jobs_are_kept() -> None:
    inst = tiny_instance(30, n_jobs=10, n_pools=3, n_slots=12, capacity=(2, 4))
    first = plan(inst, time_limit=2.0)
    start = first.schedule.start
    freeze_until = int(np.median(start[start >= 0])) + 1
    # new signals: carbon intensity doubles in pool 0
    ci = inst.ci_g_per_kwh.copy()
    ci[0] *= 2
    inst2 = dataclasses.replace(inst, ci_g_per_kwh=ci)
    res = replan(inst2, first, freeze_until=freeze_until, move_penalty_usd=5.0, time_limit=2.0)
    frozen = (first.schedule.pool >= 0) & (start < freeze_until)
    assert frozen.any()
    assert np.array_equal(res.schedule.pool[frozen], first.schedule.pool[frozen])
    assert np.array_equal(res.schedule.start[frozen], start[frozen])
    assert_feasible(with_previous(inst2, first.schedule, freeze_until=freeze_until),
                    res.schedule)
    assert res.evaluation.n_frozen_moved == 0


def test_unchanged_signals_keep_the_plan_and_moves_pay() -> None:
    inst = tiny_instance(31, n_jobs=8, n_pools=3, n_slots=12, capacity=(2, 4))
    first = plan(inst, time_limit=2.0, rel_gap=0.0)
    res = replan(inst, first, move_penalty_usd=1000.0, time_limit=2.0, rel_gap=0.0)
    # nothing changed and moving is expensive: nothing moves, no penalty is paid
    assert np.array_equal(res.schedule.pool, first.schedule.pool)
    assert np.array_equal(res.schedule.start, first.schedule.start)
    assert res.evaluation.move_usd == 0.0
    # a forced change of one announced job (its pool closes) pays exactly one move penalty
    j = int(np.flatnonzero(first.schedule.pool >= 0)[0])
    elig = inst.eligible.copy()
    elig[j, first.schedule.pool[j]] = False
    inst3 = dataclasses.replace(inst, eligible=elig)
    res3 = replan(inst3, first, move_penalty_usd=7.0, time_limit=2.0, rel_gap=0.0)
    ann = with_previous(inst3, first.schedule, move_penalty_usd=7.0)
    ev = evaluate(ann, res3.schedule)
    moved = (res3.schedule.pool != first.schedule.pool) | (
        res3.schedule.start != first.schedule.start)
    assert moved[j]
    assert np.isclose(ev.move_usd, 7.0 * moved[first.schedule.pool >= 0].sum())
