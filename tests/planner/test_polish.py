"""Equal-cost placements go to the earliest start; cheaper later ones and announced ones stay."""

from __future__ import annotations

import numpy as np

from carbonplan.planner.evaluate import evaluate
from carbonplan.planner.polish import shift_earlier
from carbonplan.planner.prepare import prepare
from carbonplan.planner.solve import plan

from .planner_helpers import assert_feasible, contiguous, tiny_instance


def flat(**kw):
    """One owned pool, flat prices and carbon: every start costs the same."""
    T = 12
    inst = tiny_instance(1, n_jobs=3, n_pools=1, n_slots=T, pausable=0.0, spot=False,
                         owned=True, capacity=(2, 2), **kw)
    import dataclasses

    J = inst.n_jobs
    return dataclasses.replace(
        inst, ci_g_per_kwh=np.full((1, T), 300.0), energy_price_usd_per_kwh=np.full((1, T), 0.1),
        units=np.ones((J, 1)), duration_slots=np.full((J, 1), 2, dtype=np.int32),
        release=np.zeros(J, dtype=np.int32), deadline=np.full(J, T, dtype=np.int32),
        eligible=np.ones((J, 1), dtype=bool))


def test_equal_cost_jobs_move_to_the_earliest_fitting_start() -> None:
    inst = flat()
    late = contiguous(inst, [0, 0, 0], [8, 9, 10])
    prep = prepare(inst)
    out = shift_earlier(prep, late)
    assert out.start.tolist() == [0, 0, 2]  # capacity 2: the third waits for a free unit
    assert_feasible(inst, out)
    assert evaluate(inst, out).objective <= evaluate(inst, late).objective + 1e-9


def test_a_cheaper_later_slot_is_kept() -> None:
    inst = flat()
    import dataclasses

    ci = np.full((1, inst.n_slots), 300.0)
    ci[0, 8:10] = 10.0  # slots 8-9 are cleaner
    inst = dataclasses.replace(inst, ci_g_per_kwh=ci)
    sched = contiguous(inst, [0, -1, -1], [8, 0, 0])
    assert shift_earlier(prepare(inst), sched).start.tolist()[0] == 8


def test_announced_placements_are_not_moved_for_nothing() -> None:
    import dataclasses

    inst = flat()
    inst = dataclasses.replace(inst, prev_pool=np.array([0, -1, -1], dtype=np.int32),
                               prev_start=np.array([8, -1, -1], dtype=np.int32),
                               move_penalty_usd=np.array([1.0, 0.0, 0.0]))
    sched = contiguous(inst, [0, -1, -1], [8, 0, 0])
    assert shift_earlier(prepare(inst), sched).start.tolist()[0] == 8


def test_plans_on_flat_signals_start_early() -> None:
    res = plan(flat(), time_limit=5)
    assert sorted(res.schedule.start.tolist()) == [0, 0, 2]
