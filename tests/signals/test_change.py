"""Change detection: only planned slots of planned zones count, over the time both cover."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carbonplan.signals.change import detect_change, detect_change_for
from carbonplan.signals.matrix import CIMatrix, ZoneProvenance

from .conftest import carbon

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


def matrix(rows: dict[str, list[float]], t0: datetime = T0, slot_h: float = 1.0) -> CIMatrix:
    zones = tuple(rows)
    ci = np.array([rows[z] for z in zones], dtype=float)
    prov = tuple(ZoneProvenance(z, "t", "t", "average", "live", t0, t0, None, 0, ci.shape[1], 0,
                                0, "") for z in zones)
    return CIMatrix(zones=zones, t0=t0, slot_h=slot_h, ci_g_per_kwh=ci,
                    flags=np.ones(ci.shape, dtype=np.int8), provenance=prov)


def test_the_same_forecast_does_not_matter() -> None:
    m = matrix({"DE": [400] * 6, "SE": [30] * 6})
    r = detect_change(m, m)
    assert not r.matters and r.changed == () and r.summary() == "no change that matters"


def test_a_change_in_planned_slots_matters_and_says_where_and_how_much() -> None:
    used = matrix({"DE": [400] * 6, "SE": [30] * 6})
    new = matrix({"DE": [400, 400, 500, 500, 400, 400], "SE": [30] * 6})
    planned = np.zeros((2, 6))
    planned[0, 1:4] = 1  # DE, slots 1-3
    r = detect_change(used, new, planned, threshold=0.1)
    c = r.zones["DE"]
    assert r.matters and r.changed == ("DE",) and "SE" not in r.zones
    assert c.slots == 3 and c.mean_abs_g_per_kwh == pytest.approx(200 / 3)
    assert c.mean_delta_g_per_kwh == pytest.approx(200 / 3) and c.max_abs_g_per_kwh == 100
    assert c.rel_change == pytest.approx(1 / 6) and "DE: 17%" in r.summary()


def test_a_change_outside_the_planned_slots_or_zones_does_not_matter() -> None:
    used = matrix({"DE": [400] * 6, "SE": [30] * 6})
    new = matrix({"DE": [400, 400, 400, 400, 900, 900], "SE": [90] * 6})
    planned = np.zeros((2, 6), dtype=bool)
    planned[0, :4] = True
    assert not detect_change(used, new, planned).matters


def test_thresholds_are_settings_and_the_absolute_floor_guards_clean_grids() -> None:
    used = matrix({"SE": [20] * 4})
    new = matrix({"SE": [26] * 4})  # +30%, but only 6 g/kWh
    assert not detect_change(used, new, threshold=0.1, min_g_per_kwh=10).matters
    assert detect_change(used, new, threshold=0.1, min_g_per_kwh=5).matters
    settings = carbon(change_threshold=0.5, change_min_g_per_kwh=0)
    assert not detect_change_for(settings, used, new).matters


def test_a_later_matrix_is_aligned_by_slot() -> None:
    used = matrix({"DE": [100, 200, 300, 400]})
    new = matrix({"DE": [200, 300, 400, 500]}, t0=T0 + timedelta(hours=1))  # same values, later
    r = detect_change(used, new)
    assert not r.matters and r.zones["DE"].slots == 3
    with pytest.raises(ValueError, match="whole number of slots"):
        detect_change(used, matrix({"DE": [1] * 4}, t0=T0 + timedelta(minutes=30)))
    with pytest.raises(ValueError, match="slot lengths differ"):
        detect_change(used, matrix({"DE": [1] * 4}, slot_h=0.5))
    with pytest.raises(ValueError, match="shape"):
        detect_change(used, used, np.ones((2, 4)))


def test_a_planned_zone_missing_from_the_new_forecast_matters() -> None:
    r = detect_change(matrix({"DE": [1] * 3, "FR": [2] * 3}), matrix({"DE": [1] * 3}))
    assert r.matters and r.changed == ("FR",) and r.zones["FR"].reason == "missing"
    assert r.to_dict()["changed"] == ["FR"]
