"""Fixtures of the planner tests (helpers live in planner_helpers.py)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from carbonplan.planner import cg, master
from carbonplan.planner.instance import Instance

from .planner_helpers import tiny_instance


@pytest.fixture
def tiny() -> Instance:
    return tiny_instance(1)


@pytest.fixture
def clock(monkeypatch):
    """Column generation's clock, simulated: every LP takes `clock.lp` seconds (real LPs, so a
    test does not depend on the machine's speed); `clock.limits` records the time limit each LP
    was given. Nothing else advances it."""
    state = types.SimpleNamespace(now=0.0, lp=0.0, limits=[])
    monkeypatch.setattr(cg, "time", types.SimpleNamespace(perf_counter=lambda: state.now))
    solve = master.LiveLP.solve

    def timed(self, *, method: str = "simplex", time_limit: float = np.inf):
        state.limits.append(time_limit)
        state.now += state.lp
        return solve(self, method=method)

    monkeypatch.setattr(master.LiveLP, "solve", timed)
    return state
