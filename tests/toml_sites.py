"""Site configs the tests share, as TOML text (a user's carbonplan.toml)."""

from __future__ import annotations


def dirty_and_clean(*, capacity: int, on_demand_usd_per_h: float, carbon: str,
                    site: str = "") -> str:
    """Two regions: `dirty` (PL, PUE 1.2, owned GPUs paying 0.1 $/kWh, the home region) and
    `clean` (SE, PUE 1.1, on-demand GPUs), `capacity` A100s each; `carbon` is the [carbon]
    section and `site` more [site] lines."""
    return f"""
[site]
home_region = "dirty"
{site}

[[regions]]
name = "dirty"
zone = "PL"
pue = 1.2
energy_price_usd_per_kwh = 0.1

[[regions]]
name = "clean"
zone = "SE"
pue = 1.1

[[pools]]
region = "dirty"
accelerator = "a100-80gb"
market = "owned"
capacity = {capacity}

[[pools]]
region = "clean"
accelerator = "a100-80gb"
market = "on_demand"
capacity = {capacity}
price_usd_per_unit_h = {on_demand_usd_per_h}
{carbon}"""
