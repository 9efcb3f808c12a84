"""Site config: templates load, catalog defaults fill gaps, every mistake names its key."""

from pathlib import Path

import pytest

from carbonplan.config import find_config, load_config, parse_config
from carbonplan.domain import Market
from carbonplan.errors import InputError

TEMPLATES = Path(__file__).parents[1] / "src" / "carbonplan" / "templates"


@pytest.mark.parametrize("name", ["cloud", "slurm"])
def test_templates_load(name: str) -> None:
    cfg = load_config(TEMPLATES / f"{name}.toml")
    site = cfg.to_site()
    assert site.pools and site.home_region in site.regions


def test_no_config_is_the_embedded_catalog() -> None:
    assert find_config() is None
    site = load_config().to_site()
    assert len(site.regions) >= 12 and len(site.pools) > 100
    assert load_config().carbon.provider == "offline"


def test_local_file_and_env_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "carbonplan.toml").write_text('[site]\nname = "here"\n')
    assert load_config().site.name == "here"
    other = tmp_path / "other.toml"
    other.write_text('[site]\nname = "env"\n')
    monkeypatch.setenv("CARBONPLAN_CONFIG", str(other))
    assert load_config().site.name == "env"


def test_pool_takes_catalog_price_and_eviction_rate() -> None:
    site = parse_config({"pools": [
        {"region": "eu-north-1", "accelerator": "h100-sxm", "market": "spot", "capacity": 4},
        {"region": "eu-north-1", "accelerator": "h100-sxm", "market": "on_demand",
         "capacity": 4, "price_usd_per_unit_h": 5.0},
    ]}).to_site()
    spot, od = site.pools
    assert spot.market == Market.SPOT and 0 < spot.price_usd_per_unit_h < 5.0
    assert spot.eviction_rate_per_h > 0
    assert od.price_usd_per_unit_h == 5.0 and od.eviction_rate_per_h == 0
    assert site.regions["eu-north-1"].zone == "SE"


def _err(data: dict) -> InputError:
    with pytest.raises(InputError) as e:
        parse_config(data).to_site()
    return e.value


def test_typo_is_named_with_a_suggestion() -> None:
    e = _err({"pools": [{"region": "eu-north-1", "accelerator": "h100-sxm", "market": "spot",
                         "capcity": 3}]})
    assert e.field == "config pools[0].capcity" and "did you mean 'capacity'" in e.reason
    e = _err({"planer": {}})
    assert e.field == "config planer" and "'planner'" in e.reason
    e = _err({"site": {"carbon_price": 5}})
    assert e.field == "config site.carbon_price" and "carbon_price_usd_per_t" in e.reason


@pytest.mark.parametrize("data,field,words", [
    ({"regions": [{"name": "x", "zone": "QQ"}]}, "config regions[0].zone", "unknown grid zone"),
    ({"regions": [{"name": "x"}]}, "config regions[0].zone", "is required"),
    ({"pools": [{"region": "mars-1", "accelerator": "t4", "market": "spot", "capacity": 1}]},
     "config pools[0].region", "unknown region"),
    ({"pools": [{"region": "eu-north-1", "accelerator": "b200", "market": "spot",
                 "capacity": 1}]}, "config pools[0].accelerator", "unknown accelerator"),
    ({"pools": [{"region": "eu-north-1", "accelerator": "a100-80gb", "mig": "3g.4gb",
                 "market": "owned", "capacity": 1}]}, "config pools[0].mig", "3g.40gb"),
    ({"pools": [{"region": "eu-north-1", "accelerator": "t4", "market": "spot",
                 "capacity": 0}]}, "config pools[0].capacity", "greater than or equal to 1"),
    ({"pools": [{"region": "eu-north-1", "accelerator": "t4", "market": "spot", "capacity": 2,
                 "price_usd_per_unit_h": -1}]}, "config pools[0].price_usd_per_unit_h",
     "greater than or equal to 0"),
    ({"site": {"carbon_price_usd_per_t": -5}}, "config site.carbon_price_usd_per_t",
     "greater than or equal to 0"),
    ({"planner": {"slot": "soon"}}, "config planner.slot", "cannot parse"),
    ({"regions": [{"name": "site-a", "zone": "SE"}],
      "pools": [{"region": "site-a", "accelerator": "t4", "market": "on_demand",
                 "capacity": 2}]}, "config pools[0].price_usd_per_unit_h", "is required"),
    ({"site": {"home_region": "nowhere"}}, "config site.home_region", "unknown region"),
    ({"pools": [{"region": "eu-north-1", "accelerator": "t4", "market": "spotty",
                 "capacity": 2}]}, "config pools[0].market", "on_demand"),
])
def test_bad_values_name_the_key(data: dict, field: str, words: str) -> None:
    e = _err(data)
    assert e.field == field
    assert words in e.reason
    assert "\n" not in str(e)


def test_toml_syntax_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[site\nname = 1\n")
    with pytest.raises(InputError) as e:
        load_config(p)
    assert "not valid TOML" in e.value.reason


def test_missing_file_is_named() -> None:
    with pytest.raises(InputError) as e:
        load_config("nope.toml")
    assert e.value.field == "--config"


def test_slurm_template_maps_pools_to_clusters_and_gres_to_gpus() -> None:
    cfg = load_config(TEMPLATES / "slurm.toml")
    sl = cfg.executor.slurm
    assert cfg.executor.kind == "slurm" and sorted(sl.clusters) == ["central", "north"]
    assert sl.gres["a100_3g.40gb"] == "a100-80gb:3g.40gb"
    assert all({"cluster", "partition"} <= set(p.labels) for p in cfg.to_site().pools)


def test_slurm_config_errors_name_the_key() -> None:
    e = _err({"executor": {"kind": "slurm", "slurm": {"clusters": {"a": {
        "slurm_conf": "/etc/slurm/slurm.conf", "acounting": True}}}}})
    assert e.field == "config executor.slurm.clusters.a.acounting"
    assert "did you mean 'accounting'" in e.reason
    e = _err({"executor": {"kind": "slurm", "slurm": {"clusters": {}, "federaton": True}}})
    assert e.field == "config executor.slurm.federaton" and "'federation'" in e.reason
    e = _err({"executor": {"kind": "slurm", "slurm": {"clusters": {"a": {
        "slurm_conf": "/x"}}}}, "pools": [
        {"region": "eu-north-1", "accelerator": "a100-80gb", "market": "owned",
         "capacity": 2, "labels": {"partition": "gpu"}}]})
    assert e.field == "config pools[0].labels.cluster" and "is required" in e.reason


def test_carbon_section_defaults_and_every_provider_table() -> None:
    c = parse_config({}).carbon
    assert c.provider == "offline" and c.electricitymaps.emission_factor_type == "lifecycle"
    assert c.seconds("cache_ttl") == 900 and c.seconds("max_stale") == 86400
    full = parse_config({"carbon": {
        "provider": "electricitymaps", "zone_providers": {"GB": "ukgrid"}, "timeout_s": 5,
        "attempts": 2, "cache_ttl": "5m", "change_threshold": 0.2,
        "electricitymaps": {"api_key_env": "EM_KEY", "emission_factor_type": "direct",
                            "zones": {"GB-NESO": "GB"}},
        "watttime": {"username": "me", "regions": {"US-CAL-CISO": "CAISO_NORTH"}},
        "ukgrid": {"region_id": 13}, "csv": {"path": "/data", "format": "simple"},
    }}).carbon
    assert full.zone_providers == {"GB": "ukgrid"} and full.ukgrid.region_id == 13


def test_inline_secrets_are_never_shown() -> None:
    c = parse_config({"carbon": {"electricitymaps": {"api_key": "k-SECRET"},
                                 "watttime": {"password": "p-SECRET"}}}).carbon
    shown = repr(c) + str(c.model_dump()) + c.model_dump_json()
    assert "k-SECRET" not in shown and "p-SECRET" not in shown


@pytest.mark.parametrize("carbon,field,words", [
    ({"provider": "electricmaps"}, "config carbon.provider", "did you mean 'electricitymaps'"),
    ({"zone_providers": {"DE": "nope"}}, "config carbon.zone_providers", "unknown provider"),
    ({"ukgrid": {"region_id": 18}}, "config carbon.ukgrid.region_id", "less than or equal"),
    ({"electricitymaps": {"emission_factor_type": "scope3"}},
     "config carbon.electricitymaps.emission_factor_type", "lifecycle"),
    ({"max_stale": "-1h"}, "config carbon.max_stale", "cannot parse"),
    ({"watttime": {"pasword": "x"}}, "config carbon.watttime.pasword", "'password'"),
])
def test_bad_carbon_settings_name_their_key(carbon: dict, field: str, words: str) -> None:
    e = _err({"carbon": carbon})
    assert e.field == field and words in e.reason, (e.field, e.reason)


def test_an_owned_pool_in_a_catalog_region_pays_no_cloud_rent() -> None:
    site = parse_config({"pools": [
        {"region": "us-east-1", "accelerator": "a100-80gb", "market": "owned", "capacity": 8},
        {"region": "us-east-1", "accelerator": "a100-80gb", "market": "on_demand",
         "capacity": 8}]}).to_site()
    owned, cloud = site.pools
    assert owned.price_usd_per_unit_h == 0.0 and cloud.price_usd_per_unit_h > 0
