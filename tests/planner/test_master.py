"""master.py: matrices, named row blocks, duals by block name, the live LP."""

from __future__ import annotations

import numpy as np

from carbonplan.planner.columns import Schedule
from carbonplan.planner.master import BLOCKS, BUDGET_SCALE, LiveLP, RowLayout, build_master
from carbonplan.planner.prepare import usage_of
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.result import Termination

from .planner_helpers import cheapest_columns, tiny_instance


def _setup(seed=3, **kw):
    inst = tiny_instance(seed, n_jobs=6, n_pools=4, n_slots=10, power_cap=True, budget=True,
                         **kw)
    prep, cols = cheapest_columns(inst, 5)
    return inst, prep, cols


def test_row_activity_is_usage() -> None:
    inst, prep, cols = _setup()
    layout = RowLayout(prep, np.flatnonzero(prep.free))
    m = build_master(prep, cols, np.arange(len(cols)), layout)
    assert set(m.blocks) == set(BLOCKS)
    # choose each job's first column
    chosen = np.full(inst.n_jobs, -1)
    for c in range(len(cols)):
        if chosen[cols.job[c]] < 0:
            chosen[cols.job[c]] = c
    x = np.zeros(m.n_vars)
    x[chosen[chosen >= 0]] = 1
    x[len(cols) + np.flatnonzero(chosen < 0)] = 1
    act = m.row_activity(x)
    units, kw = usage_of(inst, prep.cc, Schedule.from_columns(inst.n_jobs, cols, chosen))
    assert np.allclose(m.blocks["pool-capacity"].scatter(act), units)
    assert np.allclose(m.blocks["site-powercap"].scatter(act), kw)
    assert np.allclose(act[m.blocks["job-assign"].rows], 1)
    # the budget row is written in kg
    assert np.isclose(act[m.blocks["org-carbonbudget"].rows].sum(),
                      BUDGET_SCALE * cols.t_co2e[chosen[chosen >= 0]].sum())


def test_live_lp_duals_by_block_and_bound() -> None:
    inst, prep, cols = _setup(seed=4)
    lp = LiveLP(prep, RowLayout(prep, np.flatnonzero(prep.free)))
    lp.add_columns(cols, np.arange(len(cols)))
    sol = lp.solve()
    assert sol.result.termination is Termination.OPTIMAL
    y = sol.duals
    assert y["pool-capacity"].shape == (inst.n_pools, inst.n_slots)
    assert y["site-powercap"].shape == (len(inst.site_names), inst.n_slots)
    assert np.all(y["pool-capacity"] <= 1e-9) and np.all(y["site-powercap"] <= 1e-9)
    assert y["org-carbonbudget"] <= 1e-9
    # L(y_LP) <= z_LP and equals z_LP + sum min(0, rc - mu) over the master's columns
    res = Pricer(prep).price(y)
    assert res.lagrangian <= sol.result.objective + 1e-6
    # dropping and re-adding columns keeps the LP consistent
    lp.drop_columns(lp.lp_cols[:1])
    assert len(lp.lp_cols) == 1
    lp.add_columns(cols, np.arange(len(cols)))
    again = lp.solve(method="ipm")
    assert np.isclose(again.result.objective, sol.result.objective, rtol=1e-6)
