"""The built-in catalog as domain objects: GPUs with MIG profiles, grid zones, cloud regions.

`builtin_site()` is the embedded default used when no site config exists: every catalog region with
its pools (on-demand and spot for each GPU type it offers) at a default capacity.
"""

from __future__ import annotations

import math
from functools import cache

from carbonplan.catalog.gpus import DEFAULT_LIFETIME_YEARS, GPUS, MIG_PROFILES, REFERENCE_GPU
from carbonplan.catalog.regions import (
    BANDS,
    BASE_PRICE,
    PROVIDER_PUE,
    REGIONS,
    TYPICAL_SPOT_DISCOUNT,
)
from carbonplan.catalog.zones import ZONES
from carbonplan.domain import Accelerator, Market, MigProfile, Pool, Region, Site

DEFAULT_POOL_CAPACITY = 32  # GPUs per (region, GPU, market) in the embedded default
HOURS_PER_MONTH = 730.0


def band_to_rate_per_h(band: str) -> float:
    """Hourly eviction hazard from a monthly interruption band: -ln(1 - p) / 730."""
    return -math.log(1.0 - BANDS[band]) / HOURS_PER_MONTH


@cache
def accelerators() -> dict[str, Accelerator]:
    out = {}
    for gid, (name, family, mem, idle, mx, speed, emb) in GPUS.items():
        profiles = {
            p: MigProfile(name=p, slices=s, memory_gb=m, max_instances=n)
            for p, (s, m, n) in MIG_PROFILES.get(gid, {}).items()
        }
        out[gid] = Accelerator(id=gid, name=name, family=family, memory_gb=mem, idle_w=idle,
                               max_w=mx, speed=speed, embodied_kg=emb, mig_profiles=profiles)
    return out


def zone_ids() -> frozenset[str]:
    return frozenset(ZONES)


@cache
def regions() -> dict[str, Region]:
    return {
        name: Region(name=name, provider=prov, zone=zone, pue=PROVIDER_PUE[prov], location=loc,
                     continent=cont)
        for name, (prov, loc, cont, zone, _mult, _gpus) in REGIONS.items()
    }


def region_prices(name: str) -> dict[str, tuple[float, float, float]]:
    """For a catalog region: {gpu: (on-demand $/GPU-h, spot $/GPU-h, spot eviction rate /h)}."""
    prov, _loc, _cont, _zone, mult, gpus = REGIONS[name]
    out = {}
    for gpu, (savings_pct, band) in gpus.items():
        od = round(BASE_PRICE[prov][gpu] * mult, 3)
        disc = TYPICAL_SPOT_DISCOUNT[prov] if savings_pct is None else savings_pct / 100.0
        out[gpu] = (od, round(od * (1.0 - disc), 3), band_to_rate_per_h(band))
    return out


@cache
def builtin_site(capacity: int = DEFAULT_POOL_CAPACITY) -> Site:
    """The embedded default: every catalog region, on-demand and spot pools per offered GPU."""
    pools = []
    for name in REGIONS:
        for gpu, (od, spot, rate) in region_prices(name).items():
            pools.append(Pool(region=name, accelerator=gpu, market=Market.ON_DEMAND,
                              capacity=capacity, price_usd_per_unit_h=od))
            pools.append(Pool(region=name, accelerator=gpu, market=Market.SPOT,
                              capacity=capacity, price_usd_per_unit_h=spot,
                              eviction_rate_per_h=rate))
    return Site(accelerators=accelerators(), regions=regions(), pools=tuple(pools),
                embodied_lifetime_h=DEFAULT_LIFETIME_YEARS * 8760.0, reference_gpu=REFERENCE_GPU,
                home_region="us-east-1")
