"""windows.py: the spot deadline-safety rule."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonplan.planner.instance import ON_DEMAND, SPOT
from carbonplan.planner.windows import build_windows, spot_tail_slots

from .planner_helpers import tiny_instance


def _one_job(n_spot: int, n_od: int, interval_h: float, cost_h: float, deadline: int = 30):
    inst = tiny_instance(0, n_jobs=1, n_pools=2, n_slots=40)
    return dataclasses.replace(
        inst, market=np.array([ON_DEMAND, SPOT], dtype=np.int8),
        eligible=np.ones((1, 2), dtype=bool),
        duration_slots=np.array([[n_od, n_spot]], dtype=np.int32),
        release=np.array([0], dtype=np.int32), deadline=np.array([deadline], dtype=np.int32),
        checkpoint_interval_h=np.array([interval_h]), checkpoint_cost_h=np.array([cost_h]),
        pausable=np.array([False]), resume_slots=np.array([0], dtype=np.int32))


def test_no_checkpoint_needs_a_full_rerun_after_the_run() -> None:
    inst = _one_job(n_spot=4, n_od=4, interval_h=0.0, cost_h=0.0)
    assert spot_tail_slots(inst)[0, 1] == 4
    assert build_windows(inst).latest_end[0, 1] == 30 - 4


def test_checkpointing_shortens_the_tail() -> None:
    inst = _one_job(n_spot=8, n_od=8, interval_h=2.0, cost_h=0.5)
    # late eviction: redo the last 2 h + 0.5 h restore -> 3 slots
    assert spot_tail_slots(inst)[0, 1] == 3


def test_slower_fallback_makes_early_eviction_binding() -> None:
    inst = _one_job(n_spot=6, n_od=12, interval_h=1.0, cost_h=0.0)
    # evicted just before the first checkpoint: restart at slot s+1, redo all 12 slots
    assert spot_tail_slots(inst)[0, 1] == 1 - 6 + 12


def test_spot_never_safe_without_fallback() -> None:
    inst = _one_job(n_spot=2, n_od=2, interval_h=1.0, cost_h=0.0)
    inst = dataclasses.replace(inst, eligible=np.array([[False, True]]))
    win = build_windows(inst)
    assert win.n_starts[0, 1] == 0


@settings(max_examples=60, deadline=None)
@given(n_spot=st.integers(1, 10), n_od=st.integers(1, 12),
       interval=st.one_of(st.just(0.0), st.floats(0.05, 6)),
       cost=st.floats(0, 2), start=st.integers(0, 20))
def test_every_allowed_spot_run_survives_an_eviction_at_any_moment(n_spot, n_od, interval, cost,
                                                                   start) -> None:
    inst = _one_job(n_spot, n_od, interval, cost, deadline=40)
    win = build_windows(inst)
    end = start + n_spot
    if end > win.latest_end[0, 1]:
        return
    i = interval if interval > 0 else n_spot
    i = min(i, n_spot)
    # simulate evictions just before every checkpoint and just before the end
    moments = [min(k * i, n_spot) for k in range(1, math.ceil(n_spot / i - 1e-9) + 1)]
    for m in moments:
        saved = math.floor((m - 1e-9) / i) * i if interval > 0 else 0.0
        restart = start + math.ceil(m - 1e-9)
        remaining = n_od * (n_spot - saved) / n_spot + cost
        assert restart + math.ceil(remaining - 1e-9) <= 40
