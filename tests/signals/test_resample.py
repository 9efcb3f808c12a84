"""Resampling to the slot grid: means, repeats, coverage, flags, and the integral it keeps."""

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonplan.signals.resample import resample
from carbonplan.signals.series import GAP, Flag, Series

T = datetime(2026, 11, 23, tzinfo=UTC)


def series(values, step_s, start=T, flags=None):
    v = np.asarray(values, dtype=float)
    f = (np.asarray(flags, dtype=np.int8) if flags is not None
         else np.where(np.isfinite(v), Flag.FORECAST, GAP).astype(np.int8))
    return Series(zone="DE", provider="t", source="t", signal="average", kind="forecast",
                  start=start, step_s=step_s, values=v, flags=f, issued_at=T)


def test_five_minute_points_become_hourly_means() -> None:
    v = np.arange(24 * 12, dtype=float)  # 24 h of 5-minute points
    out = resample(series(v, 300), T, 24, 3600)
    assert np.allclose(out.values, v.reshape(24, 12).mean(axis=1))
    assert out.step_s == 3600 and out.start == T


def test_hourly_points_repeat_in_half_hour_slots_and_offsets_work() -> None:
    out = resample(series([100, 200], 3600), T + timedelta(minutes=30), 3, 1800)
    assert out.values.tolist() == [100, 200, 200]


def test_partial_coverage_and_gaps() -> None:
    # 5-min points for the first 20 minutes of hour 0, then all of hour 1
    v = [10.0] * 4 + [np.nan] * 8 + [20.0] * 12
    out = resample(series(v, 300), T, 3, 3600)
    assert np.isnan(out.values[0]) and out.flags[0] == GAP  # 33% < 50% coverage
    assert out.values[1] == 20 and np.isnan(out.values[2])
    half = resample(series([10.0] * 6 + [np.nan] * 6, 300), T, 1, 3600)
    assert half.values[0] == 10  # 50% coverage is enough; the mean is over the covered part


def test_a_slot_mixing_measurement_and_forecast_is_a_forecast() -> None:
    out = resample(series([1, 2, 3, 4], 1800, flags=[Flag.MEASUREMENT, Flag.FORECAST,
                                                     Flag.MEASUREMENT, Flag.MEASUREMENT]),
                   T, 2, 3600)
    assert out.flags.tolist() == [Flag.FORECAST, Flag.MEASUREMENT]


def test_no_overlap_is_all_gaps() -> None:
    out = resample(series([1, 2], 3600), T + timedelta(days=1), 4, 3600)
    assert np.all(np.isnan(out.values)) and np.all(out.flags == GAP)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1999), min_size=1, max_size=60),
       st.sampled_from([300, 900, 1800, 3600]), st.sampled_from([900, 1800, 3600, 7200]))
def test_full_coverage_keeps_the_time_integral(values, step_s, slot_s) -> None:
    n_slots = len(values) * step_s // slot_s
    if n_slots == 0:
        return
    out = resample(series(values, step_s), T, n_slots, slot_s)
    span = n_slots * slot_s
    src = np.repeat(np.asarray(values), step_s)[:span].sum()
    assert np.isclose(out.values.sum() * slot_s, src, rtol=1e-9, atol=1e-6)
