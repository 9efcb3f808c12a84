"""Built-in cloud regions: grid zone, GPU types offered, on-demand and spot price, spot band.

Prices are rounded list prices per GPU-hour (instance price / GPUs in the instance) from the
providers' public pricing pages (2025), for the base US region; other regions apply the regional
multiplier below. AWS spot prices and interruption bands come from the AWS Spot Instance Advisor
(snapshot of June 2025: savings % and interruption-frequency bucket per region and instance type);
the GPU types listed for an AWS region are those the advisor lists there. GCP and Azure spot
discounts are the providers' typical published discounts, and their interruption bands are assumed
(marked `assumed=True`), since neither publishes one per GPU type. These are defaults for planning,
not quotes: a site config overrides any of them. Sources in docs/catalog.md.
Plain data: imports nothing from carbonplan.
"""

from __future__ import annotations

# Provider defaults. PUE: AWS 1.15 (AWS 2023 global), GCP 1.10 (Google 2023 fleet TTM), Azure 1.18
# (Microsoft fleet figure), on-prem 1.58 (Uptime Institute 2023 survey average).
PROVIDER_PUE: dict[str, float] = {"aws": 1.15, "gcp": 1.10, "azure": 1.18, "onprem": 1.58}

# Base on-demand USD per GPU-hour (US region) per provider and GPU.
BASE_PRICE: dict[str, dict[str, float]] = {
    "aws": {"v100": 3.06, "t4": 0.526, "a10g": 1.006, "l4": 0.805, "l40s": 1.861,
            "a100-40gb": 4.10, "a100-80gb": 5.12, "h100-sxm": 6.88, "h200": 7.91},
    "gcp": {"v100": 2.95, "t4": 0.55, "l4": 0.71, "a100-40gb": 3.67, "a100-80gb": 5.07,
            "h100-sxm": 11.06},
    "azure": {"v100": 3.06, "t4": 0.53, "a100-40gb": 3.40, "a100-80gb": 4.10, "h100-sxm": 12.29,
              "h200": 13.75},
}

# Spot discount (fraction off on-demand) where no per-region figure exists.
TYPICAL_SPOT_DISCOUNT: dict[str, float] = {"aws": 0.60, "gcp": 0.65, "azure": 0.60}

# AWS Spot Instance Advisor interruption buckets (share of spot capacity reclaimed per month).
BANDS: dict[str, float] = {"<5%": 0.025, "5-10%": 0.075, "10-15%": 0.125, "15-20%": 0.175,
                           ">20%": 0.25}

# name: (provider, location, continent, zone, price multiplier,
#        {gpu: (spot savings % or None for the provider's typical discount, band)})
REGIONS: dict[str, tuple[str, str, str, str, float, dict[str, tuple[float | None, str]]]] = {
    # --- AWS (advisor: savings %, band) -------------------------------------------------------
    "us-east-1": ("aws", "N. Virginia", "north-america", "US-MIDA-PJM", 1.00, {
        "v100": (80, ">20%"), "t4": (64, "15-20%"), "a10g": (59, ">20%"), "l4": (49, ">20%"),
        "l40s": (58, "5-10%"), "a100-40gb": (67, "10-15%"), "a100-80gb": (65, "<5%"),
        "h100-sxm": (52, ">20%"), "h200": (64, "<5%")}),
    "us-east-2": ("aws", "Ohio", "north-america", "US-MIDA-PJM", 1.00, {
        "v100": (85, ">20%"), "t4": (64, "5-10%"), "a10g": (58, "10-15%"), "l4": (58, ">20%"),
        "l40s": (65, ">20%"), "a100-40gb": (66, "5-10%"), "h100-sxm": (61, "5-10%"),
        "h200": (65, ">20%")}),
    "us-west-2": ("aws", "Oregon", "north-america", "US-NW-PACW", 1.00, {
        "v100": (71, ">20%"), "t4": (64, ">20%"), "a10g": (63, ">20%"), "l4": (47, ">20%"),
        "l40s": (50, ">20%"), "a100-40gb": (53, ">20%"), "a100-80gb": (67, "15-20%"),
        "h100-sxm": (46, "5-10%"), "h200": (63, "<5%")}),
    # x1.20: its g4dn list prices over us-east-1's (docs/catalog.md); a solar grid
    "us-west-1": ("aws", "N. California", "north-america", "US-CAL-CISO", 1.20, {
        "t4": (59, "5-10%"), "h100-sxm": (73, "5-10%"), "h200": (90, "<5%")}),
    "ca-central-1": ("aws", "Canada Central", "north-america", "CA-QC", 1.10, {
        "v100": (65, ">20%"), "t4": (65, "5-10%"), "a10g": (61, ">20%"), "l4": (61, "5-10%")}),
    "eu-west-1": ("aws", "Ireland", "europe", "IE", 1.10, {
        "v100": (56, ">20%"), "t4": (54, "5-10%"), "a10g": (56, "10-15%"),
        "a100-40gb": (34, ">20%")}),
    "eu-west-2": ("aws", "London", "europe", "GB", 1.17, {
        "v100": (65, ">20%"), "t4": (66, "<5%"), "a10g": (66, "5-10%"), "l4": (64, "15-20%"),
        "h100-sxm": (39, "10-15%")}),
    "eu-central-1": ("aws", "Frankfurt", "europe", "DE", 1.18, {
        "v100": (90, ">20%"), "t4": (62, "10-15%"), "a10g": (59, ">20%"), "l4": (64, "10-15%"),
        "l40s": (68, ">20%"), "a100-40gb": (47, ">20%"), "a100-80gb": (90, "<5%")}),
    "eu-north-1": ("aws", "Stockholm", "europe", "SE", 1.05, {
        "t4": (65, ">20%"), "a10g": (72, "5-10%"), "l4": (69, "5-10%"), "l40s": (63, ">20%"),
        "h100-sxm": (55, "<5%")}),
    "ap-northeast-1": ("aws", "Tokyo", "asia", "JP-TK", 1.25, {
        "v100": (69, ">20%"), "t4": (67, "10-15%"), "a10g": (51, "10-15%"), "l4": (56, ">20%"),
        "l40s": (65, "<5%"), "a100-40gb": (54, "<5%"), "a100-80gb": (90, "<5%"),
        "h100-sxm": (44, "10-15%"), "h200": (58, "5-10%")}),
    "ap-south-1": ("aws", "Mumbai", "asia", "IN-MH", 1.12, {
        "t4": (69, ">20%"), "a10g": (69, ">20%"), "l4": (76, "10-15%"),
        "a100-40gb": (90, "<5%"), "h100-sxm": (81, "5-10%"), "h200": (85, "<5%")}),
    # --- GCP (typical discount; band assumed) -------------------------------------------------
    "us-central1": ("gcp", "Iowa", "north-america", "US-MIDW-MISO", 1.00, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "l4": (None, "10-15%"),
        "a100-40gb": (None, "10-15%"), "a100-80gb": (None, "10-15%"),
        "h100-sxm": (None, "15-20%")}),
    "northamerica-northeast1": ("gcp", "Montreal", "north-america", "CA-QC", 1.10, {
        "t4": (None, "10-15%"), "l4": (None, "10-15%")}),
    "europe-west4": ("gcp", "Netherlands", "europe", "NL", 1.10, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "l4": (None, "10-15%"),
        "a100-40gb": (None, "10-15%"), "a100-80gb": (None, "10-15%"),
        "h100-sxm": (None, "15-20%")}),
    "europe-west1": ("gcp", "Belgium", "europe", "BE", 1.10, {
        "t4": (None, "10-15%"), "l4": (None, "10-15%"), "a100-80gb": (None, "10-15%")}),
    "asia-northeast1": ("gcp", "Tokyo", "asia", "JP-TK", 1.25, {
        "t4": (None, "10-15%"), "l4": (None, "10-15%"), "a100-40gb": (None, "10-15%"),
        "h100-sxm": (None, "15-20%")}),
    # --- Azure (typical discount; band assumed) -----------------------------------------------
    "eastus": ("azure", "Virginia", "north-america", "US-MIDA-PJM", 1.00, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "a100-80gb": (None, "10-15%"),
        "h100-sxm": (None, "15-20%")}),
    "westus2": ("azure", "Washington", "north-america", "US-NW-GCPD", 1.00, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "a100-80gb": (None, "10-15%"),
        "h100-sxm": (None, "15-20%")}),
    "westeurope": ("azure", "Netherlands", "europe", "NL", 1.12, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "a100-80gb": (None, "10-15%"),
        "h100-sxm": (None, "15-20%")}),
    "northeurope": ("azure", "Ireland", "europe", "IE", 1.10, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "a100-80gb": (None, "10-15%")}),
    "swedencentral": ("azure", "Gavle", "europe", "SE", 1.10, {
        "a100-80gb": (None, "10-15%"), "h100-sxm": (None, "15-20%"), "h200": (None, "15-20%")}),
    "japaneast": ("azure", "Tokyo", "asia", "JP-TK", 1.25, {
        "t4": (None, "10-15%"), "v100": (None, "10-15%"), "a100-80gb": (None, "10-15%")}),
}
