"""The built-in catalog holds the facts the issue lists, consistently."""

from datetime import UTC, datetime

import numpy as np

from carbonplan import catalog
from carbonplan.catalog.regions import REGIONS
from carbonplan.domain import Market
from carbonplan.signals.typical import typical_slots

REQUIRED_GPUS = {"v100", "t4", "a10g", "l4", "l40s", "a100-40gb", "a100-80gb", "h100-sxm",
                 "h100-pcie", "h200"}


def test_gpus_with_power_speed_and_embodied() -> None:
    accs = catalog.accelerators()
    assert REQUIRED_GPUS <= set(accs)
    ref = accs[catalog.REFERENCE_GPU]
    assert ref.speed == 1.0
    for a in accs.values():
        assert 0 <= a.idle_w < a.max_w <= 1000
        assert a.speed > 0 and a.embodied_kg > 0
    assert accs["h100-sxm"].speed > accs["a100-80gb"].speed > accs["v100"].speed > accs["t4"].speed


def test_mig_profiles_of_a100_and_h100() -> None:
    accs = catalog.accelerators()
    for gid in ("a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie"):
        profiles = accs[gid].mig_profiles
        assert {p.slices for p in profiles.values()} == {1, 2, 3, 4, 7}
        full = max(profiles.values(), key=lambda p: p.slices)
        assert full.slices == 7 and full.memory_gb == accs[gid].memory_gb
        for p in profiles.values():
            assert p.slices * p.max_instances <= 7
    assert "3g.40gb" in accs["a100-80gb"].mig_profiles
    assert "3g.20gb" in accs["a100-40gb"].mig_profiles
    assert not accs["t4"].mig_profiles


def test_regions_cover_three_providers_and_continents() -> None:
    regions = catalog.regions()
    assert len(regions) >= 12
    assert {r.provider for r in regions.values()} == {"aws", "gcp", "azure"}
    assert {r.continent for r in regions.values()} == {"north-america", "europe", "asia"}
    for r in regions.values():
        assert r.zone in catalog.zone_ids()
        assert r.pue == catalog.PROVIDER_PUE[r.provider]


def test_a_region_is_on_a_grid_with_a_daily_dip() -> None:
    """Otherwise the offline model is flat in time in every built-in region and, on the
    defaults, waiting saves no carbon."""
    day = typical_slots(catalog.regions()["us-west-1"].zone, datetime(2026, 6, 1, tzinfo=UTC),
                        24, 3600)
    assert np.ptp(day) / day.mean() > 0.25


def test_every_region_prices_its_gpus_with_a_spot_discount() -> None:
    accs = catalog.accelerators()
    for name in REGIONS:
        offers = catalog.region_prices(name)
        assert offers, name
        for gpu, (od, spot, rate) in offers.items():
            assert gpu in accs
            assert 0 < spot < od
            assert 0 < rate < 0.01  # per hour, from a monthly band


def test_builtin_site_has_on_demand_and_spot_pools() -> None:
    site = catalog.builtin_site()
    names = [p.name for p in site.pools]
    assert len(names) == len(set(names))
    assert "eu-north-1/h100-sxm/spot" in names and "eu-north-1/h100-sxm/on_demand" in names
    spot = [p for p in site.pools if p.market == Market.SPOT]
    assert spot and all(p.eviction_rate_per_h > 0 for p in spot)
    assert site.home_region == "us-east-1"


def test_band_conversion() -> None:
    # 25% of capacity reclaimed per month -> hazard -ln(0.75)/730 per hour
    assert abs(catalog.band_to_rate_per_h(">20%") - 0.000394) < 1e-6
