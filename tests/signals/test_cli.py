"""`carbonplan forecast`: table and chart with provenance, JSON, and one-line errors."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import Reply, em_forecast


def one_line_error(r, field: str, words: str) -> None:
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert field in lines[0] and words in lines[0], lines[0]
    assert r.out == ""


def em_config(tmp_path: Path, api, **carbon: str) -> None:
    extra = "".join(f"{k} = {v}\n" for k, v in carbon.items())
    (tmp_path / "carbonplan.toml").write_text(
        f'[carbon]\nprovider = "electricitymaps"\nattempts = 1\n{extra}'
        f'[carbon.electricitymaps]\nbase_url = "{api.url}"\n')


def test_offline_forecast_is_labelled_an_estimate(cli, db_path: Path) -> None:
    r = cli("forecast", "US-CAL-CISO", "--hours", "24")
    assert r.code == 0, r.err
    assert "ESTIMATE" in r.out and "carbonplan offline model (estimate)" in r.out
    assert "USA, California (CAISO)" in r.out and "forecast" in r.out
    assert r.out.count("estimate ") >= 24 and any(c in r.out for c in "▁▂▃▄▅▆▇█")
    assert not db_path.exists()  # nothing to cache for the offline model


def test_json_history_and_slot(cli) -> None:
    r = cli("forecast", "DE", "--hours", "6", "--slot", "30m", "--history", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["kind"] == "history" and data["estimate"] is True and data["slot_h"] == 0.5
    assert data["unit"] == "gCO2e/kWh" and len(data["points"]) in (12, 13)
    assert {p["flag"] for p in data["points"]} == {"estimate"}
    first = datetime.fromisoformat(data["points"][0]["start"])
    assert datetime.now(UTC) - first <= timedelta(hours=6, minutes=30)


def test_a_region_stands_for_its_zone(cli, tmp_path) -> None:
    (tmp_path / "carbonplan.toml").write_text(
        '[[regions]]\nname = "lab"\nzone = "ES"\nprovider = "onprem"\n'
        '[[pools]]\nregion = "lab"\naccelerator = "a100-80gb"\nmarket = "owned"\n'
        'capacity = 4\n')
    for region, zone in (("us-west-1", "US-CAL-CISO"), ("eu-north-1", "SE"), ("lab", "ES")):
        by_region = json.loads(cli("forecast", region, "--hours", "3", "--json").out)
        assert by_region["zone"] == zone
        by_zone = json.loads(cli("forecast", zone, "--hours", "3", "--json").out)
        assert [p["g_per_kwh"] for p in by_region["points"]] == [
            p["g_per_kwh"] for p in by_zone["points"]]


def test_electricitymaps_forecast_with_source_and_issue_time(cli, api, tmp_path, em_key,
                                                              db_path) -> None:
    h0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    updated = h0 - timedelta(minutes=13)
    api.on("/carbon-intensity/forecast", em_forecast("DE", h0, [400, 350, 300], updated))
    em_config(tmp_path, api)
    r = cli("forecast", "DE", "--hours", "5")
    assert r.code == 0, r.err
    assert "Electricity Maps v3 (lifecycle)" in r.out and updated.strftime("%H:%MZ") in r.out
    assert r.out.count("forecast ") >= 3 and "blend into the zone's typical profile" in r.out
    assert em_key not in r.out + r.err and db_path.exists()
    j = json.loads(cli("forecast", "DE", "--hours", "2", "--json").out)
    assert j["origin"] == "cached" and j["points"][0]["g_per_kwh"] == 400


def test_a_failing_provider_still_answers_and_says_why(cli, api, tmp_path, em_key) -> None:
    api.on("/carbon-intensity/forecast", Reply(503))
    em_config(tmp_path, api)
    r = cli("forecast", "DE", "--hours", "3")
    assert r.code == 0 and "HTTP 503" in r.out and "typical profile" in r.out
    assert "ESTIMATE" in r.out


@pytest.mark.parametrize("args,field,words", [
    (["XX"], "zone", "unknown grid zone or region 'XX'"),
    (["us-wst-1"], "zone", "did you mean 'us-west-1'"),
    (["DE", "--provider", "wattime"], "--provider", "did you mean 'watttime'"),
    (["DE", "--hours", "0"], "--hours", "must be a positive"),
    (["DE", "--hours", "-3"], "--hours", "must be a positive"),
    (["DE", "--hours", "nan"], "--hours", "must be a positive"),
    (["DE", "--hours", "10000"], "--hours", "at most 744"),
    (["DE", "--hours", "soon"], "--hours", "valid"),
    (["DE", "--slot", "3 parsecs"], "--slot", "cannot parse"),
    (["DE", "--provider", "electricitymaps"], "ELECTRICITYMAPS_API_KEY", "is not set"),
    (["DE", "--provider", "watttime"], "zone", "carbon.watttime.regions"),
    (["FR", "--provider", "ukgrid"], "zone", "GB and GB-NESO"),
    (["DE", "--provider", "csv"], "carbon.csv.path", "is required"),
])
def test_bad_input_is_one_line(cli, db_path, monkeypatch, args, field, words) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_API_KEY", raising=False)
    one_line_error(cli("forecast", *args), field, words)
    assert not db_path.exists()


def test_a_refused_key_is_one_line_and_never_shown(cli, api, tmp_path, em_key) -> None:
    api.on("/carbon-intensity/forecast", Reply(401, {"message": f"invalid key {em_key}"}))
    em_config(tmp_path, api)
    r = cli("forecast", "DE")
    one_line_error(r, "ELECTRICITYMAPS_API_KEY", "HTTP 401")
    assert em_key not in r.err


def test_bad_carbon_config(cli, tmp_path) -> None:
    (tmp_path / "carbonplan.toml").write_text('[carbon]\nprovider = "electricmaps"\n')
    one_line_error(cli("forecast", "DE"), "config carbon.provider", "'electricitymaps'")
    (tmp_path / "carbonplan.toml").write_text('[carbon.electricitymaps]\napi_kye = "x"\n')
    one_line_error(cli("forecast", "DE"), "config carbon.electricitymaps.api_kye",
                   "did you mean 'api_key'")
    (tmp_path / "carbonplan.toml").write_text('[carbon]\nzone_providers = {DE = "ukgrid", '
                                              'XX = "offline"}\n')
    one_line_error(cli("forecast", "DE"), "config carbon.zone_providers", "unknown grid zone")
    (tmp_path / "carbonplan.toml").write_text('[carbon]\ncache_ttl = "soon"\n')
    one_line_error(cli("forecast", "DE"), "config carbon.cache_ttl", "cannot parse")
