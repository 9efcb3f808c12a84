"""Built-in grid zones (Electricity Maps zone ids) with a typical carbon intensity.

`avg_g_per_kwh` is the mean lifecycle, consumption-based carbon intensity (gCO2e/kWh) of the zone
over 2022-08-03..2022-12-07 as published by Electricity Maps (the 47-zone collection of Lechowicz
et al., SIGMETRICS 2024), rounded. It is a level for estimates and validation, not a forecast; the
offline model in carbonplan.signals adds the daily and seasonal shape. `utc_offset_h` is the
zone's standard-time offset (for daily shapes). `mix` names the dominant low-carbon source, which
decides the shape of the offline model: solar (midday dip), wind, hydro/nuclear (flat),
fossil (flat, high).
Plain data: imports nothing from carbonplan.
"""

from __future__ import annotations

# zone id: (name, avg gCO2e/kWh, UTC offset h, dominant mix)
ZONES: dict[str, tuple[str, float, float, str]] = {
    "AUS-NSW": ("Australia, New South Wales", 596, 10, "solar"),
    "AUS-VIC": ("Australia, Victoria", 513, 10, "wind"),
    "BE": ("Belgium", 186, 1, "nuclear"),
    "BR-CS": ("Brazil, Central-South", 109, -3, "hydro"),
    "CA-ON": ("Canada, Ontario", 64, -5, "nuclear"),
    "CA-QC": ("Canada, Quebec", 29, -5, "hydro"),
    "CH": ("Switzerland", 137, 1, "hydro"),
    "CL-SEN": ("Chile, SEN", 177, -4, "solar"),
    "DE": ("Germany", 412, 1, "wind"),
    "ES": ("Spain", 209, 1, "solar"),
    "FI": ("Finland", 128, 2, "nuclear"),
    "FR": ("France", 94, 1, "nuclear"),
    "GB": ("Great Britain", 255, 0, "wind"),
    "HK": ("Hong Kong", 435, 8, "fossil"),
    "ID": ("Indonesia", 652, 7, "fossil"),
    "IE": ("Ireland", 324, 0, "wind"),
    "IN-DL": ("India, Delhi", 458, 5.5, "fossil"),
    "IN-MH": ("India, Maharashtra", 730, 5.5, "fossil"),
    "IS": ("Iceland", 27, 0, "hydro"),
    "IT-NO": ("Italy, North", 381, 1, "solar"),
    "JP-KN": ("Japan, Kansai", 458, 9, "nuclear"),
    "JP-TK": ("Japan, Tokyo", 554, 9, "fossil"),
    "KR": ("South Korea", 491, 9, "fossil"),
    "NL": ("Netherlands", 327, 1, "wind"),
    "NO-NO1": ("Norway, South-East", 26, 1, "hydro"),
    "NZ-NZN": ("New Zealand, North Island", 105, 12, "hydro"),
    "PL": ("Poland", 697, 1, "fossil"),
    "SE": ("Sweden", 25, 1, "hydro"),
    "SG": ("Singapore", 491, 8, "fossil"),
    "TW": ("Taiwan", 536, 8, "fossil"),
    "US-CAL-CISO": ("USA, California (CAISO)", 283, -8, "solar"),
    "US-CAR-SC": ("USA, South Carolina", 602, -5, "nuclear"),
    "US-CENT-SWPP": ("USA, Southwest Power Pool", 375, -6, "wind"),
    "US-MIDA-PJM": ("USA, PJM (Mid-Atlantic)", 371, -5, "fossil"),
    "US-MIDW-MISO": ("USA, MISO (Midwest)", 456, -6, "wind"),
    "US-NE-ISNE": ("USA, ISO New England", 259, -5, "fossil"),
    "US-NW-GCPD": ("USA, Grant County PUD (Washington)", 24, -8, "hydro"),
    "US-NW-PACW": ("USA, PacifiCorp West (Oregon)", 369, -8, "wind"),
    "US-NY-NYIS": ("USA, New York (NYISO)", 269, -5, "nuclear"),
    "US-SW-SRP": ("USA, Salt River Project (Arizona)", 248, -7, "solar"),
    "US-TEX-ERCO": ("USA, Texas (ERCOT)", 393, -6, "wind"),
    "UY": ("Uruguay", 49, -3, "wind"),
    "ZA": ("South Africa", 692, 2, "fossil"),
    # UK National Grid Carbon Intensity API, national signal (no key); same physical grid as GB.
    "GB-NESO": ("Great Britain (NESO Carbon Intensity API)", 255, 0, "wind"),
}

# Zones south of the equator: the offline model shifts their seasonal shape by half a year.
SOUTHERN_HEMISPHERE: frozenset[str] = frozenset(
    {"AUS-NSW", "AUS-VIC", "BR-CS", "CL-SEN", "NZ-NZN", "UY", "ZA"})

# The window `avg_g_per_kwh` was measured over (inclusive start, exclusive end), UTC dates.
LEVEL_WINDOW = ("2022-08-03", "2022-12-07")
