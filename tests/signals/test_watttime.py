"""WattTime v3 against a local server: login, token renewal, MOER conversion, 5-minute points."""

import base64
from datetime import timedelta

import numpy as np
import pytest

from carbonplan.energy.formulas import lbs_per_mwh_to_g_per_kwh
from carbonplan.signals.errors import ProviderAuthError, ProviderRejected, ProviderResponseError
from carbonplan.signals.providers.watttime import WattTime
from carbonplan.signals.resample import resample
from carbonplan.signals.series import Flag

from .conftest import NOW, Reply, carbon

T0 = NOW.replace(minute=10)  # 12:10, a 5-minute boundary


def moer(start, values, generated=NOW, step=300, units="lbs_co2_per_mwh", **meta) -> dict:
    return {"data": [{"point_time": (start + timedelta(seconds=step * i)).isoformat(),
                      "value": v} for i, v in enumerate(values)],
            "meta": {"region": "CAISO_NORTH", "signal_type": "co2_moer", "units": units,
                     "model": {"date": "2026-10-01"}, "generated_at": generated.isoformat(),
                     "generated_at_period_seconds": 300, "data_point_period_seconds": step,
                     **meta}}


def provider(api, clock, sleeps, **wt) -> WattTime:
    return WattTime(carbon(watttime={"base_url": api.url, **wt}), clock=clock,
                    sleep=sleeps.append)


def test_login_with_basic_auth_then_bearer(api, clock, sleeps, wt_login) -> None:
    api.on("/login", {"token": "jwt-SECRET-1"})
    api.on("/v3/forecast", moer(T0, [800.0] * 12))
    s = provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    user, password = wt_login
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert api.hits("/login")[0].headers["Authorization"] == f"Basic {basic}"
    call = api.hits("/v3/forecast")[0]
    assert call.headers["Authorization"] == "Bearer jwt-SECRET-1"
    assert call.query == {"region": "CAISO_NORTH", "signal_type": "co2_moer",
                          "horizon_hours": "1"}
    assert s.step_s == 300 and s.n == 12 and s.signal == "marginal"
    assert np.allclose(s.values, lbs_per_mwh_to_g_per_kwh(800.0))  # 362.9 g/kWh
    assert np.all(s.flags == Flag.FORECAST) and s.issued_at == NOW


def test_five_minute_points_resample_to_hourly_means(api, clock, sleeps, wt_login) -> None:
    api.on("/login", {"token": "t"})
    h = NOW.replace(minute=0)
    api.on("/v3/forecast", moer(h, list(range(700, 724))))  # two hours of 5-minute points
    s = provider(api, clock, sleeps).forecast("US-CAL-CISO", h, h + timedelta(hours=2))
    hourly = resample(s, h, 2, 3600)
    assert np.allclose(hourly.values, [lbs_per_mwh_to_g_per_kwh(705.5),
                                       lbs_per_mwh_to_g_per_kwh(717.5)])


def test_token_is_reused_then_renewed_before_thirty_minutes(api, clock, sleeps,
                                                            wt_login) -> None:
    api.on("/login", {"token": "first"}, {"token": "second"})
    api.on("/v3/forecast", moer(T0, [800.0]))
    p = provider(api, clock, sleeps)
    p.forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    clock.advance(minutes=20)
    p.forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    assert p.logins == 1
    clock.advance(minutes=6)  # 26 minutes: within 5 minutes of expiry
    p.forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    assert p.logins == 2
    assert api.hits("/v3/forecast")[-1].headers["Authorization"] == "Bearer second"


def test_a_refused_token_logs_in_again_once(api, clock, sleeps, wt_login) -> None:
    api.on("/login", {"token": "revoked"}, {"token": "fresh"})
    api.on("/v3/forecast", Reply(401, {"error": "token expired"}), moer(T0, [800.0]))
    s = provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    assert s.n == 1 and len(api.hits("/login")) == 2
    assert [c.headers["Authorization"] for c in api.hits("/v3/forecast")] == [
        "Bearer revoked", "Bearer fresh"]


def test_refused_twice_is_an_auth_error_without_secrets(api, clock, sleeps, wt_login) -> None:
    api.on("/login", {"token": "tok-SECRET"})
    api.on("/v3/forecast", Reply(403, {"error": "no access to CAISO_NORTH"}))
    with pytest.raises(ProviderAuthError) as e:
        provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    assert len(api.hits("/v3/forecast")) == 2
    assert "tok-SECRET" not in str(e.value) and wt_login[1] not in str(e.value)


def test_bad_login(api, clock, sleeps, wt_login) -> None:
    api.on("/login", Reply(401, {"error": "bad credentials"}))
    with pytest.raises(ProviderAuthError) as e:
        provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    assert e.value.field == "WATTTIME_PASSWORD" and wt_login[1] not in str(e.value)
    api.on("/login", {"no": "token"})
    with pytest.raises(ProviderResponseError, match="no token"):
        provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))


def test_unmapped_zone_and_missing_password(api, clock, sleeps, wt_login, monkeypatch) -> None:
    with pytest.raises(ProviderRejected, match="carbon.watttime.regions"):
        provider(api, clock, sleeps).check_zone("DE")
    monkeypatch.delenv("WATTTIME_PASSWORD")
    with pytest.raises(ProviderAuthError) as e:
        provider(api, clock, sleeps).check_zone("US-CAL-CISO")
    assert e.value.field == "WATTTIME_PASSWORD" and api.seen == []


def test_wrong_units_and_warnings(api, clock, sleeps, wt_login, caplog) -> None:
    api.on("/login", {"token": "t"})
    api.on("/v3/forecast", moer(T0, [1.0], units="kg_co2_per_mwh"))
    with pytest.raises(ProviderResponseError, match="units"):
        provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    api.on("/v3/forecast", moer(T0, [800.0, 5000.0, 801.0],
                                warnings=[{"type": "stale", "message": "model is old"}]))
    s = provider(api, clock, sleeps).forecast("US-CAL-CISO", NOW, NOW + timedelta(hours=1))
    assert s.dropped == 1 and "model is old" in caplog.text  # 5000 lbs/MWh = 2268 g/kWh


def test_history_chunks_by_thirty_days_without_double_counting(api, clock, sleeps,
                                                               wt_login) -> None:
    api.on("/login", {"token": "t"})
    start = NOW.replace(minute=0) - timedelta(days=31)
    # every chunk answer holds one point at the chunk start and one at its (inclusive) end
    api.on("/v3/historical",
           moer(start, [800.0], step=300) | {"data": [
               {"point_time": start.isoformat(), "value": 800.0},
               {"point_time": (start + timedelta(days=30)).isoformat(), "value": 900.0}]},
           {"data": [{"point_time": (start + timedelta(days=30)).isoformat(), "value": 900.0}],
            "meta": {"units": "lbs_co2_per_mwh", "data_point_period_seconds": 300}})
    s = provider(api, clock, sleeps).history("US-CAL-CISO", start, start + timedelta(days=31))
    calls = api.hits("/v3/historical")
    assert len(calls) == 2 and calls[1].query["start"] == calls[0].query["end"]
    assert s.dropped == 0 and s.kind == "history" and np.all(s.flags[np.isfinite(s.values)]
                                                              == Flag.MEASUREMENT)
    assert np.sum(np.isfinite(s.values)) == 2
