"""The offline model: a zone's typical carbon intensity at any time, deterministic, no network.

    ci(zone, t) = level[zone] * seasonal[mix](day of year) * daily[mix](local hour)

- `level` is the zone's Electricity Maps mean over 2022-08-03..2022-12-07 (catalog/zones.py),
  divided by the mean seasonal factor over that window, so that it is an annual level.
- `daily[mix]` (24 hour-of-day factors, mean 1, linear between hour centres, at the zone's standard
  local time) is, for solar-dominated grids, the mean profile of the catalog's solar zones in the
  47-zone Electricity Maps collection (Aug-Dec 2022): a midday dip to 0.83. Other grids are flat:
  their class profiles (wind +-6%, nuclear +-8%, hydro +-4%, fossil +-3%) peak at different hours
  in different zones and did not fit the hourly data better than a flat level.
- `seasonal[mix]` is `1 + A cos(2 pi (doy - peak) / 365.25)`, the first annual harmonic of the
  monthly means of Electricity Maps' US-CAL-CISO 2021 hourly export (A = 0.121, peak on day 296),
  for solar grids; south of the equator the peak moves by half a year. Other grids are flat: the
  wind harmonic measured from DE and GB 2020 (Let's Wait Awhile data, A = 0.16) made the fit to
  the ten wind zones of Aug-Dec 2022 worse, so it is not used.
docs/signals.md gives the numbers and how well the model fits; scripts/calibrate_signals.py
measures them again from the data directory. Must not import the store, requests or config.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

import numpy as np

from carbonplan.catalog.zones import LEVEL_WINDOW, SOUTHERN_HEMISPHERE, ZONES
from carbonplan.errors import InputError, unknown
from carbonplan.signals.series import epoch_s

_FLAT = np.ones(24)
DAILY: dict[str, np.ndarray] = {
    "solar": np.array([1.115, 1.093, 1.087, 1.084, 1.085, 1.086, 1.082, 1.034, 0.954, 0.890,
                       0.852, 0.833, 0.826, 0.833, 0.844, 0.854, 0.897, 0.951, 1.021, 1.081,
                       1.110, 1.128, 1.128, 1.128]),
    "wind": _FLAT, "hydro": _FLAT, "nuclear": _FLAT, "fossil": _FLAT,
}
# mix -> (amplitude, day of year of the peak) of the seasonal factor
SEASONAL: dict[str, tuple[float, float]] = {
    "solar": (0.121, 296.0),
    "wind": (0.0, 0.0), "hydro": (0.0, 0.0), "nuclear": (0.0, 0.0), "fossil": (0.0, 0.0),
}
DAY_S = 86400
YEAR_D = 365.25
SUBSAMPLE_S = 900  # slot means average the model at this spacing


def check_zone(zone: str, field: str = "zone") -> str:
    """`zone` if the catalog knows it. Raises InputError naming `field` otherwise."""
    if zone not in ZONES:
        raise InputError(field, unknown("grid zone", zone, ZONES))
    return zone


def _doy(times_s: np.ndarray) -> np.ndarray:
    """Fractional day of year (0 = Jan 1 00:00 UTC), from epoch seconds."""
    years = times_s.astype("datetime64[s]").astype("datetime64[Y]")
    return (times_s - years.astype("datetime64[s]").astype(np.int64)) / DAY_S


def seasonal_factor(zone: str, times_s: np.ndarray) -> np.ndarray:
    amp, peak = SEASONAL[ZONES[zone][3]]
    if amp == 0.0:
        return np.ones(times_s.shape)
    if zone in SOUTHERN_HEMISPHERE:
        peak = (peak + YEAR_D / 2) % YEAR_D
    return 1.0 + amp * np.cos(2 * np.pi * (_doy(times_s) - peak) / YEAR_D)


def daily_factor(zone: str, times_s: np.ndarray) -> np.ndarray:
    _name, _avg, offset_h, mix = ZONES[zone]
    shape = DAILY[mix]
    hour = ((times_s / 3600.0) + offset_h) % 24.0  # local standard time
    x = hour - 0.5  # the factors sit at hour centres
    lo = np.floor(x).astype(int) % 24
    frac = x - np.floor(x)
    return shape[lo] * (1 - frac) + shape[(lo + 1) % 24] * frac


@cache
def annual_level(zone: str) -> float:
    """The zone's level with the seasonal shape divided out of its Aug-Dec 2022 mean."""
    start, end = (np.datetime64(d, "s").astype(np.int64) for d in LEVEL_WINDOW)
    hours = np.arange(start, end, 3600, dtype=np.int64)
    return float(ZONES[zone][1] / seasonal_factor(zone, hours).mean())


def typical_at(zone: str, times_s: np.ndarray) -> np.ndarray:
    """float (n,): the model at instants (epoch seconds), gCO2e/kWh."""
    t = np.asarray(times_s, dtype=np.int64)
    return annual_level(zone) * seasonal_factor(zone, t) * daily_factor(zone, t)


def typical_slots(zone: str, start: datetime, n_slots: int, slot_s: int) -> np.ndarray:
    """float (n_slots,): the model's mean over each slot [start + k*slot_s, ...), gCO2e/kWh."""
    check_zone(zone)
    k = max(1, -(-slot_s // SUBSAMPLE_S))
    sub = (np.arange(k) + 0.5) * (slot_s / k)
    t = epoch_s(start) + slot_s * np.arange(n_slots, dtype=np.int64)[:, None] + sub[None, :]
    return typical_at(zone, t.astype(np.int64).ravel()).reshape(n_slots, k).mean(axis=1)
