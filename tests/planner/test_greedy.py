"""greedy.py and lns.py: placements fit, the search never makes the plan worse."""

from __future__ import annotations

import numpy as np

from carbonplan.planner.backends import get_backend
from carbonplan.planner.columns import ColumnSet, Schedule
from carbonplan.planner.duals import Duals
from carbonplan.planner.greedy import Residual, place_dense
from carbonplan.planner.lns import LNS, Incumbent
from carbonplan.planner.prepare import prepare, usage_of
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.solve import candidates, dual_greedy

from .planner_helpers import assert_feasible, tiny_instance


def test_place_dense_respects_capacity() -> None:
    inst = tiny_instance(20, n_jobs=30, n_pools=4, n_slots=12, power_cap=True)
    prep = prepare(inst)
    cand = Pricer(prep).dense(None)
    res = Residual.of(prep)
    order = np.arange(inst.n_jobs)
    pool, start = place_dense(prep, cand, order, res, limit=prep.penalty)
    sched = Schedule.from_starts(inst, pool, start)
    assert_feasible(inst, sched)
    units, kw = usage_of(inst, prep.cc, sched)
    assert np.allclose(res.cap, inst.capacity - units)
    assert np.allclose(res.power[np.isfinite(res.power)],
                       (inst.power_cap_kw - kw)[np.isfinite(res.power)])


def test_lns_never_worsens_and_keeps_residuals_consistent() -> None:
    inst = tiny_instance(21, n_jobs=40, n_pools=4, n_slots=16, capacity=(2, 4))
    prep = prepare(inst)
    pricer = Pricer(prep)
    cols = ColumnSet.empty()
    y = Duals.zeros(4, 2, 16)
    chosen = dual_greedy(prep, pricer, cols, y, rounds=1)[0]
    inc = Incumbent(prep, cols, chosen)
    res = pricer.price(y)
    from carbonplan.planner.cg import CGResult

    cg = CGResult(duals=y, bound=res.lagrangian, lp_objective=np.inf, lp=None, pricing=res)
    ptr, idx = candidates(prep, pricer, cols, y, res, cg, chosen, 5)
    lns = LNS(prep, cols, ptr, idx, inc, y, res.job_rc, get_backend("highs"), max_jobs=8,
              window=4, dense=pricer.dense(y))
    objs = [inc.objective]
    lns.one_opt(time_limit=5.0)
    objs.append(inc.objective)
    lns.run(time_limit=1.0, on_iteration=lambda it, o: objs.append(o))
    assert all(b <= a + 1e-9 for a, b in zip(objs, objs[1:], strict=False))
    sched = inc.schedule()
    assert_feasible(inst, sched)
    again = Residual.of(prep, sched)
    assert np.allclose(again.cap, inc.res.cap)
