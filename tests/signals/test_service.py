"""The service: cache with issue times, TTL, last good forecast, blending, fail-open matrix,
and no secret in logs, errors or the store."""

import logging
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from carbonplan.errors import InputError
from carbonplan.signals.errors import ProviderAuthError
from carbonplan.signals.series import Flag
from carbonplan.signals.service import SignalService
from carbonplan.store import open_store

from .conftest import NOW, Reply, carbon, em_forecast, em_item, hours

H0 = NOW.replace(minute=0)
FC = "/carbon-intensity/forecast"


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(str(tmp_path / "signals.db"))
    yield s
    s.close()


def em_service(api, store, clock, sleeps, **over) -> SignalService:
    settings = carbon(provider="electricitymaps", electricitymaps={"base_url": api.url}, **over)
    return SignalService(settings, store, clock=clock, sleep=sleeps.append)


def test_offline_default_is_an_uncached_estimate(store, clock) -> None:
    svc = SignalService(carbon(), store, clock=clock)
    s = svc.forecast("DE", NOW, NOW + timedelta(hours=72))
    assert s.is_estimate and s.origin == "model" and s.n == 73 and s.start == H0
    assert "estimate" in s.source and store.latest_series("DE", "offline", "forecast") is None
    assert np.array_equal(s.values, svc.forecast("DE", NOW, NOW + timedelta(hours=72)).values)


def test_forecast_is_cached_resampled_and_blended_past_the_horizon(api, store, clock, sleeps,
                                                                   em_key) -> None:
    api.on(FC, em_forecast("DE", H0, [400, 380, 360, 340], updated=NOW - timedelta(minutes=5)))
    s = em_service(api, store, clock, sleeps).forecast("DE", NOW, NOW + timedelta(hours=8),
                                                        slot_h=0.5)
    assert s.step_s == 1800 and s.n == 17 and s.values[:8].tolist() == [400, 400, 380, 380, 360,
                                                                          360, 340, 340]
    assert np.all(s.flags[:8] == Flag.FORECAST) and np.all(s.flags[8:] == Flag.ESTIMATE)
    assert s.provider_until == H0 + timedelta(hours=4) and np.all(np.isfinite(s.values))
    row = store.latest_series("DE", "electricitymaps:lifecycle", "forecast")
    assert row.issued_at == NOW - timedelta(minutes=5) and row.fetched_at == NOW
    assert row.step_s == 3600 and row.signal == "average"


def test_a_fresh_cached_forecast_saves_the_request(api, store, clock, sleeps, em_key) -> None:
    api.on(FC, em_forecast("DE", H0, [400] * 24))
    svc = em_service(api, store, clock, sleeps, cache_ttl="15m")
    svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    clock.advance(minutes=10)
    again = svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    assert len(api.hits(FC)) == 1 and again.origin == "cached"
    clock.advance(minutes=10)
    assert svc.forecast("DE", NOW, NOW + timedelta(hours=6)).origin == "live"
    assert len(api.hits(FC)) == 2


def test_provider_failure_uses_the_last_good_forecast(api, store, clock, sleeps, em_key) -> None:
    api.on(FC, em_forecast("DE", H0, [400, 390, 380, 370, 360, 350]), Reply(500))
    svc = em_service(api, store, clock, sleeps, cache_ttl="1m")
    svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    clock.advance(hours=2)
    s = svc.forecast("DE", clock(), clock() + timedelta(hours=6))
    assert s.origin == "stale" and "HTTP 500" in s.note and "issued 2026-11-23 12:10Z" in s.note
    assert s.values[:4].tolist() == [380, 370, 360, 350] and s.flags[0] == Flag.FORECAST
    assert np.all(s.flags[4:] == Flag.ESTIMATE) and sleeps == [0.5, 1.0]


def test_no_cache_or_too_old_falls_back_to_the_typical_profile(api, store, clock, sleeps,
                                                               em_key) -> None:
    api.on(FC, Reply(503))
    svc = em_service(api, store, clock, sleeps, max_stale="3h")
    s = svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    assert s.origin == "model" and s.is_estimate and "typical profile" in s.note
    api.on(FC, em_forecast("DE", H0, [400] * 48), Reply(503))
    svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    clock.advance(hours=4)
    assert svc.forecast("DE", clock(), clock() + timedelta(hours=6)).origin == "model"


def test_auth_errors_raise_for_people_but_the_matrix_fails_open(api, store, clock, sleeps,
                                                                em_key) -> None:
    api.on(FC, em_forecast("DE", H0, [400] * 24), Reply(401, {"message": "key revoked"}))
    svc = em_service(api, store, clock, sleeps, cache_ttl="1m")
    svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    clock.advance(minutes=5)
    with pytest.raises(ProviderAuthError):
        svc.forecast("DE", clock(), clock() + timedelta(hours=6))
    m = svc.build_ci_matrix(["DE"], H0, 6, 1.0)
    prov = m.provenance[0]
    assert prov.origin == "stale" and "ELECTRICITYMAPS_API_KEY" in prov.note
    assert m.ci_g_per_kwh[0].tolist() == [400] * 6


def test_matrix_mixes_providers_per_zone_with_provenance(api, store, clock, sleeps, em_key,
                                                         wt_login) -> None:
    api.on(FC, em_forecast("DE", H0, [400, 380]))
    api.on(f"/intensity/{H0.strftime('%Y-%m-%dT%H:%MZ')}/fw48h", {"data": [
        {"from": t.strftime("%Y-%m-%dT%H:%MZ"), "to": "", "intensity": {"forecast": 100 + i,
                                                                         "actual": None}}
        for i, t in enumerate(hours(H0, 4, 0.5))]})
    api.on("/login", {"token": "jwt-SECRET"})
    api.on("/v3/forecast", {"data": [{"point_time": t.isoformat(), "value": 1000.0}
                                     for t in hours(H0, 24, 1 / 12)],
                            "meta": {"units": "lbs_co2_per_mwh",
                                     "data_point_period_seconds": 300}})
    settings = carbon(provider="electricitymaps", electricitymaps={"base_url": api.url},
                      ukgrid={"base_url": api.url}, watttime={"base_url": api.url},
                      zone_providers={"GB": "ukgrid", "SE": "offline",
                                      "US-CAL-CISO": "watttime"})
    svc = SignalService(settings, store, clock=clock, sleep=sleeps.append)
    pools = ["DE", "GB", "DE", "SE", "US-CAL-CISO"]
    m = svc.build_ci_matrix(pools, H0, 4, 1.0)
    assert m.zones == ("DE", "GB", "SE", "US-CAL-CISO") and m.ci_g_per_kwh.shape == (4, 4)
    assert m.rows(pools).shape == (5, 4) and np.array_equal(m.rows(pools)[2], m.row("DE"))
    assert m.row("DE")[:2].tolist() == [400, 380] and m.row("GB")[:2].tolist() == [100.5, 102.5]
    assert np.allclose(m.row("US-CAL-CISO")[:2], 453.59237)
    meta = m.meta()
    assert meta["mixed_signals"] and meta["zones"]["US-CAL-CISO"]["signal"] == "marginal"
    by = {p.zone: p for p in m.provenance}
    assert by["SE"].origin == "model" and by["SE"].n_estimate == 4
    assert by["DE"].n_forecast == 2 and by["DE"].n_estimate == 2
    assert by["DE"].covered_until == H0 + timedelta(hours=2)


def test_matrix_input_errors(store, clock) -> None:
    svc = SignalService(carbon(), store, clock=clock)
    for args, field in [((["DE", "XX"], H0, 4, 1.0), "zone"), ((["DE"], H0, 0, 1.0), "n_slots"),
                        ((["DE"], H0, 4, 0.0), "slot_h"),
                        ((["DE"], H0.replace(tzinfo=None), 4, 1.0), "t0")]:
        with pytest.raises(InputError) as e:
            svc.build_ci_matrix(*args)
        assert e.value.field == field


def test_history_is_cached_and_reused(api, store, clock, sleeps, em_key) -> None:
    start = H0 - timedelta(hours=6)
    api.on("/carbon-intensity/history", {"zone": "DE", "history": [
        em_item("DE", t, 300 + i) for i, t in enumerate(hours(start, 6))]}, Reply(500))
    svc = em_service(api, store, clock, sleeps)
    s = svc.history("DE", start, H0)
    assert s.values.tolist() == [300, 301, 302, 303, 304, 305] and s.origin == "live"
    again = svc.history("DE", start + timedelta(hours=1), H0)
    assert len(api.hits("/carbon-intensity/history")) == 1 and again.origin == "cached"
    assert again.values.tolist() == [301, 302, 303, 304, 305]
    # a longer window needs the provider, which now fails: cache plus typical, said so
    longer = svc.history("DE", start, H0 + timedelta(hours=2))
    assert "using cached history" in longer.note and longer.flags[-1] == Flag.ESTIMATE


def test_secrets_never_reach_logs_errors_or_the_store(api, store, clock, sleeps, em_key,
                                                      wt_login, caplog, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 and requests too
    token = "jwt-TOKEN-SECRET-xyz"
    api.on(FC, em_forecast("DE", H0, [400] * 6), Reply(403, {"message": f"bad key {em_key}"}))
    api.on("/login", {"token": token})
    api.on("/v3/forecast", Reply(401, {"error": f"token {token} revoked"}))
    settings = carbon(provider="electricitymaps", cache_ttl="1m",
                      electricitymaps={"base_url": api.url}, watttime={"base_url": api.url},
                      zone_providers={"US-CAL-CISO": "watttime"})
    svc = SignalService(settings, store, clock=clock, sleep=sleeps.append)
    svc.forecast("DE", NOW, NOW + timedelta(hours=6))
    clock.advance(minutes=5)
    m = svc.build_ci_matrix(["DE", "US-CAL-CISO"], H0, 6, 1.0)
    errors = []
    for zone in ("DE", "US-CAL-CISO"):
        with pytest.raises(ProviderAuthError) as e:
            svc.forecast(zone, clock(), clock() + timedelta(hours=6))
        errors.append(f"{e.value!s} {e.value!r} {e.value.reason}")
    texts = [caplog.text, str(m.meta()), *errors]
    db = b"".join(p.read_bytes() for p in tmp_path.glob("signals.db*"))
    for secret in (em_key, wt_login[1], token):
        assert all(secret not in t for t in texts), secret
        assert secret.encode() not in db, secret
    assert b"electricitymaps:lifecycle" in db  # the store was written, without them
