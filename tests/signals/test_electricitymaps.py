"""Electricity Maps v3 against a local server speaking its documented shapes."""

from datetime import timedelta

import numpy as np
import pytest

from carbonplan.signals.errors import ProviderAuthError, ProviderRejected, ProviderResponseError
from carbonplan.signals.providers.electricitymaps import ElectricityMaps
from carbonplan.signals.series import Flag

from .conftest import NOW, Reply, carbon, em_forecast, em_item, em_time, hours

H0 = NOW.replace(minute=0)  # 12:00, the current hour


def provider(api, clock, sleeps, **em) -> ElectricityMaps:
    return ElectricityMaps(carbon(electricitymaps={"base_url": api.url, **em}), clock=clock,
                           sleep=sleeps.append)


def test_forecast_request_and_parsing(api, clock, sleeps, em_key) -> None:
    api.on("/carbon-intensity/forecast", em_forecast("DE", H0, [400, 380.5, 360]))
    s = provider(api, clock, sleeps).forecast("DE", NOW, NOW + timedelta(hours=3))
    seen = api.hits("/carbon-intensity/forecast")[0]
    assert seen.headers["auth-token"] == em_key
    assert seen.query == {"zone": "DE", "emissionFactorType": "lifecycle",
                          "shouldUseFallbackCallerLookup": "false", "horizonHours": "72"}
    assert s.start == H0 and s.step_s == 3600 and s.values.tolist() == [400, 380.5, 360]
    assert np.all(s.flags == Flag.FORECAST) and s.issued_at == NOW and s.signal == "average"
    assert s.source == "Electricity Maps v3 (lifecycle)" and s.kind == "forecast"


def test_direct_factors_zone_mapping_and_estimation_switch(api, clock, sleeps, em_key) -> None:
    api.on("/carbon-intensity/forecast", em_forecast("GB", H0, [200]))
    p = provider(api, clock, sleeps, emission_factor_type="direct", disable_estimations=True,
                 horizon_h=0)
    p.forecast("GB-NESO", NOW, NOW + timedelta(hours=1))
    q = api.hits("/carbon-intensity/forecast")[0].query
    assert q["zone"] == "GB" and q["emissionFactorType"] == "direct"
    assert q["disableEstimations"] == "true" and "horizonHours" not in q
    assert p.cache_key == "electricitymaps:direct"


def test_latest_fills_the_current_hour_when_the_forecast_starts_later(api, clock, sleeps,
                                                                       em_key) -> None:
    api.on("/carbon-intensity/forecast", em_forecast("DE", H0 + timedelta(hours=1), [300, 310]))
    api.on("/carbon-intensity/latest", em_item("DE", H0, 290, estimated=True))
    s = provider(api, clock, sleeps).forecast("DE", NOW, NOW + timedelta(hours=3))
    assert s.start == H0 and s.values.tolist() == [290, 300, 310]
    assert s.flags.tolist() == [Flag.ESTIMATE, Flag.FORECAST, Flag.FORECAST]


def test_nulls_duplicates_and_disorder_are_cleaned(api, clock, sleeps, em_key) -> None:
    body = em_forecast("DE", H0, [400, None, 380, 370, 360, 350])
    body["forecast"].reverse()
    body["forecast"].append({"carbonIntensity": 371, "datetime": em_time(H0 + timedelta(hours=3))})
    api.on("/carbon-intensity/forecast", body)
    s = provider(api, clock, sleeps).forecast("DE", NOW, NOW + timedelta(hours=6))
    assert s.values[0] == 400 and np.isnan(s.values[1]) and s.values[3] in (370, 371)
    assert s.dropped == 2


@pytest.mark.parametrize("body,match", [
    ({"zone": "DE", "updatedAt": "2026-11-23T12:00:00.000Z"}, "no 'forecast' list"),
    ({"zone": "FR", "forecast": []}, "asked for zone DE, got FR"),
    ([1, 2, 3], "expected a JSON object"),
    (em_forecast("DE", H0, [None, None, "high", 1]), "3 of 4 points invalid"),
])
def test_partial_and_wrong_payloads_are_rejected(api, clock, sleeps, em_key, body,
                                                 match) -> None:
    api.on("/carbon-intensity/forecast", body)
    with pytest.raises(ProviderResponseError, match=match):
        provider(api, clock, sleeps).forecast("DE", NOW, NOW + timedelta(hours=3))


@pytest.mark.parametrize("code,err", [(401, ProviderAuthError), (403, ProviderAuthError),
                                      (404, ProviderRejected)])
def test_refusals(api, clock, sleeps, em_key, code, err) -> None:
    api.on("/carbon-intensity/forecast", Reply(code, {"message": "Zone DE not in your plan"}))
    with pytest.raises(err) as e:
        provider(api, clock, sleeps).forecast("DE", NOW, NOW + timedelta(hours=3))
    assert em_key not in str(e.value) and "not in your plan" in e.value.reason
    if code != 404:
        assert e.value.field == "ELECTRICITYMAPS_API_KEY"


def test_missing_key_is_a_config_error_before_any_request(api, clock, sleeps,
                                                          monkeypatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_API_KEY", raising=False)
    with pytest.raises(ProviderAuthError) as e:
        provider(api, clock, sleeps).check_zone("DE")
    assert e.value.field == "ELECTRICITYMAPS_API_KEY" and "is not set" in e.value.reason
    assert api.seen == []


def test_inline_key_is_used_when_the_variable_is_unset(api, clock, sleeps, monkeypatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_API_KEY", raising=False)
    api.on("/carbon-intensity/forecast", em_forecast("DE", H0, [1]))
    provider(api, clock, sleeps, api_key="inline-SECRET").forecast("DE", NOW, NOW)
    assert api.hits("/carbon-intensity/forecast")[0].headers["auth-token"] == "inline-SECRET"


def test_recent_history_uses_history_with_estimated_flags(api, clock, sleeps, em_key) -> None:
    start = H0 - timedelta(hours=4)
    api.on("/carbon-intensity/history", {"zone": "DE", "history": [
        em_item("DE", t, 300 + i, estimated=i == 2) for i, t in enumerate(hours(start, 4))]})
    s = provider(api, clock, sleeps).history("DE", start, H0)
    assert s.values.tolist() == [300, 301, 302, 303] and s.kind == "history"
    assert s.flags.tolist() == [Flag.MEASUREMENT, Flag.MEASUREMENT, Flag.ESTIMATE,
                                Flag.MEASUREMENT]
    assert s.issued_at == H0  # the end of its last point


def test_older_history_uses_past_range_in_ten_day_chunks(api, clock, sleeps, em_key) -> None:
    start = H0 - timedelta(days=15)
    # the server answers every chunk with the whole 15 days: chunking must not double count
    items = [em_item("DE", t, 100 + i % 50) for i, t in enumerate(hours(start, 15 * 24))]
    api.on("/carbon-intensity/past-range", {"zone": "DE", "data": items})
    s = provider(api, clock, sleeps).history("DE", start, H0)
    calls = api.hits("/carbon-intensity/past-range")
    assert len(calls) == 2 and calls[0].query["start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert s.n == 360 and s.dropped == 0 and not np.isnan(s.values).any()
