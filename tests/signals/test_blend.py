"""Blending into the typical profile past the horizon and in gaps."""

import numpy as np

from carbonplan.signals.blend import fill_gaps
from carbonplan.signals.series import GAP, Flag

F = Flag.FORECAST


def test_beyond_the_horizon_the_anomaly_decays_into_typical() -> None:
    typical = np.full(60, 100.0)
    values = np.r_[np.full(12, 150.0), np.full(48, np.nan)]
    flags = np.r_[np.full(12, F), np.full(48, GAP)].astype(np.int8)
    v, f = fill_gaps(values, flags, typical, slot_h=1.0, blend_h=12.0)
    assert np.all(v[:12] == 150) and np.all(f[:12] == F) and np.all(f[12:] == Flag.ESTIMATE)
    assert v[12] == np.float64(100 * (1 + 0.5 * np.exp(-1 / 12)))
    assert np.all(np.diff(v[12:]) < 0) and abs(v[-1] - 100) < 2  # monotone, converging


def test_no_provider_data_is_the_typical_profile() -> None:
    typical = np.linspace(50, 80, 10)
    v, f = fill_gaps(np.full(10, np.nan), np.full(10, GAP, dtype=np.int8), typical,
                     slot_h=1.0, blend_h=12.0)
    assert np.array_equal(v, typical) and np.all(f == Flag.ESTIMATE)


def test_a_gap_in_the_middle_uses_its_nearest_edge() -> None:
    typical = np.full(9, 100.0)
    values = np.array([200, 200, 200, np.nan, np.nan, np.nan, 50, 50, 50], dtype=float)
    flags = np.where(np.isfinite(values), F, GAP).astype(np.int8)
    v, _ = fill_gaps(values, flags, typical, slot_h=1.0, blend_h=12.0)
    assert v[3] > 180 and v[5] < 60 and 50 < v[4] < 200


def test_slots_before_the_first_forecast_point_blend_backwards() -> None:
    typical = np.full(5, 100.0)
    values = np.array([np.nan, np.nan, 80, 80, 80])
    v, f = fill_gaps(values, np.where(np.isfinite(values), F, GAP).astype(np.int8), typical,
                     slot_h=1.0, blend_h=0.0)
    assert v[:2].tolist() == [100, 100] and f[0] == Flag.ESTIMATE  # blend_h 0: typical at once


def test_extreme_edge_ratios_are_bounded() -> None:
    typical = np.full(4, 100.0)
    values = np.array([5000.0, np.nan, np.nan, np.nan])  # never valid, but blend must not explode
    v, _ = fill_gaps(values, np.array([F, GAP, GAP, GAP], dtype=np.int8), typical, slot_h=1.0,
                     blend_h=1000.0)
    assert v[1] <= 500.0
