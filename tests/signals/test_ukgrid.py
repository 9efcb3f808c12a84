"""NESO Carbon Intensity API against a local server: national and regional, half-hours."""

from datetime import timedelta

import numpy as np
import pytest

from carbonplan.signals.errors import ProviderRejected, ProviderResponseError
from carbonplan.signals.providers.ukgrid import UkGrid
from carbonplan.signals.series import Flag

from .conftest import NOW, Reply, carbon

H0 = NOW.replace(minute=0)


def uk(t):
    return t.strftime("%Y-%m-%dT%H:%MZ")


def period(t, forecast, actual=None, regional=False) -> dict:
    intensity = {"forecast": forecast, "index": "moderate"}
    if not regional:
        intensity["actual"] = actual
    p = {"from": uk(t), "to": uk(t + timedelta(minutes=30)), "intensity": intensity}
    if regional:
        p["generationmix"] = [{"fuel": "gas", "perc": 43.6}, {"fuel": "wind", "perc": 30.1}]
    return p


def provider(api, clock, sleeps, **ukgrid) -> UkGrid:
    return UkGrid(carbon(ukgrid={"base_url": api.url, **ukgrid}), clock=clock,
                  sleep=sleeps.append)


def test_national_forecast_with_actuals_for_past_periods(api, clock, sleeps) -> None:
    path = f"/intensity/{uk(H0)}/fw48h"
    api.on(path, {"data": [period(H0, 180, 176), period(H0 + timedelta(minutes=30), 170),
                           period(H0 + timedelta(hours=1), 160)]})
    s = provider(api, clock, sleeps).forecast("GB-NESO", NOW, NOW + timedelta(hours=48))
    assert api.hits(path)[0].headers["Accept"] == "application/json"
    assert s.step_s == 1800 and s.start == H0 and s.values.tolist() == [176, 170, 160]
    assert s.flags.tolist() == [Flag.MEASUREMENT, Flag.FORECAST, Flag.FORECAST]
    assert s.issued_at == H0 and s.source == "NESO Carbon Intensity (national)"


def test_regional_forecast_by_region_id(api, clock, sleeps) -> None:
    path = f"/regional/intensity/{uk(H0)}/fw48h/regionid/13"
    api.on(path, {"data": [{"regionid": 13, "dnoregion": "UKPN London", "shortname": "London",
                            "data": [period(H0, 190, regional=True),
                                     period(H0 + timedelta(minutes=30), 185, regional=True)]}]})
    p = provider(api, clock, sleeps, region_id=13)
    s = p.forecast("GB", NOW, NOW + timedelta(hours=1))
    assert s.values.tolist() == [190, 185] and p.cache_key == "ukgrid:region-13"
    # some answers hold the region as an object rather than a one-element list
    api.on(path, {"data": {"regionid": 13, "data": [period(H0, 150, regional=True)]}})
    assert p.forecast("GB", NOW, NOW + timedelta(hours=1)).values.tolist() == [150]


def test_history_chunks_by_fourteen_days_and_flags_modelled_values(api, clock, sleeps) -> None:
    start = H0 - timedelta(days=20)
    mid = start + timedelta(days=14)
    api.on(f"/intensity/{uk(start)}/{uk(mid)}",
           {"data": [period(start, 200, 190), period(start + timedelta(minutes=30), 210)]})
    api.on(f"/intensity/{uk(mid)}/{uk(H0)}", {"data": [period(mid, 150, 151)]})
    s = provider(api, clock, sleeps).history("GB", start, H0)
    assert s.values[0] == 190 and s.values[1] == 210 and s.flags[1] == Flag.ESTIMATE
    assert s.values[-1] == 151 and np.isnan(s.values[2])


def test_error_body_and_bad_periods(api, clock, sleeps) -> None:
    path = f"/intensity/{uk(H0)}/fw48h"
    api.on(path, Reply(400, {"error": {"code": "400 Bad Request",
                                       "message": "Please enter a valid ISO8601 date"}}))
    with pytest.raises(ProviderRejected, match="valid ISO8601"):
        provider(api, clock, sleeps).forecast("GB", NOW, NOW + timedelta(hours=1))
    api.on(path, {"error": {"code": "500", "message": "internal"}})
    with pytest.raises(ProviderResponseError, match="internal"):
        provider(api, clock, sleeps).forecast("GB", NOW, NOW + timedelta(hours=1))
    api.on(path, {"data": [period(H0, 180), {"from": uk(H0)}, period(H0, None),
                           period(H0 + timedelta(hours=1), 170)]})
    s = provider(api, clock, sleeps).forecast("GB", NOW, NOW + timedelta(hours=2))
    assert s.dropped == 2 and s.values[0] == 180


def test_only_great_britain(api, clock, sleeps) -> None:
    with pytest.raises(ProviderRejected, match="GB and GB-NESO"):
        provider(api, clock, sleeps).check_zone("FR")
