"""policies.py: every baseline respects capacity, power caps, releases and deadlines; the MIP is
never worse than any of them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonplan.planner.evaluate import evaluate
from carbonplan.planner.policies import POLICIES, get_policy, rolling_percentile
from carbonplan.planner.registry import UnknownNameError
from carbonplan.planner.solve import plan

from .planner_helpers import assert_feasible, tiny_instance

NAMES = ["run-now", "threshold", "lowest-window", "carbon-time", "greedy"]


def test_registry() -> None:
    assert set(NAMES) <= set(POLICIES.names())
    with pytest.raises(UnknownNameError, match="valid:"):
        get_policy("fifo")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), power=st.booleans(), n_jobs=st.integers(2, 20))
def test_policies_are_feasible_and_the_plan_beats_them(seed, power, n_jobs) -> None:
    inst = tiny_instance(seed, n_jobs=n_jobs, n_pools=4, n_slots=12, power_cap=power,
                         capacity=(1, 4))
    planned = plan(inst, time_limit=3.0, rel_gap=0.0)
    for name in NAMES:
        sched = get_policy(name)(inst)
        assert_feasible(inst, sched)
        ev = evaluate(inst, sched)
        assert planned.result.objective <= ev.objective + 1e-6, name


def _one_pool(ci: np.ndarray, n: int = 2, release: int = 0, deadline: int | None = None):
    T = len(ci)
    inst = tiny_instance(0, n_jobs=1, n_pools=1, n_slots=T, spot=False)
    return dataclasses.replace(
        inst, ci_g_per_kwh=ci[None, :].astype(float), price_usd_per_unit_h=np.ones((1, T)),
        eligible=np.ones((1, 1), bool), duration_slots=np.array([[n]], np.int32),
        release=np.array([release], np.int32),
        deadline=np.array([T if deadline is None else deadline], np.int32),
        capacity=np.full((1, T), 10.0), units=np.ones((1, 1)), pausable=np.array([False]),
        unplanned_penalty_usd=np.array([1e6]), home_pool=np.zeros(1, np.int32))


def test_run_now_starts_at_release() -> None:
    inst = _one_pool(np.array([500, 400, 100, 100, 300, 600, 700, 800.0]), release=1)
    assert get_policy("run-now")(inst).start[0] == 1


def test_lowest_window_finds_the_cleanest_window() -> None:
    inst = _one_pool(np.array([500, 400, 100, 100, 300, 600, 700, 800.0]))
    assert get_policy("lowest-window")(inst).start[0] == 2


def test_threshold_waits_for_low_carbon_and_is_forced_at_the_latest_start() -> None:
    ci = np.array([500, 400, 100, 100, 300, 600, 700, 800.0])
    q = rolling_percentile(ci, 24, 30.0)
    inst = _one_pool(ci)
    s = get_policy("threshold")(inst).start[0]
    assert ci[s] <= q[s]
    never_low = _one_pool(np.array([100, 200, 300, 400, 500, 600.0]), deadline=5)
    from carbonplan.planner.policies import threshold

    # an absolute threshold below every value: forced to start at the latest safe start
    assert threshold(never_low, ci_threshold=1.0).start[0] == 5 - 2


def test_carbon_time_trades_savings_against_waiting() -> None:
    # waiting 1 slot saves a lot; waiting 5 slots saves slightly more: carbon-time takes the
    # short wait, the lowest window the long one
    ci = np.array([900, 300, 900, 900, 900, 290, 290, 900.0])
    inst = _one_pool(ci, n=1)
    assert get_policy("carbon-time")(inst).start[0] == 1
    assert get_policy("lowest-window")(inst).start[0] == 5
