#!/usr/bin/env python3
"""Measure the offline model's shapes from public data, and how well the model fits it.

    python scripts/calibrate_signals.py [DATA_DIR]     # default: ../shared/data beside the repo

Reads (never copies) three folders of DATA_DIR:
- electricitymaps-api-47zones-2022: hourly Electricity Maps intensity, Aug-Dec 2022 -> the mean
  hour-of-day profile per dominant-mix class, and the model's fit per zone;
- electricitymaps-hourly-2021-2023/US-CAL-CISO_2021_hourly.csv: a full year -> solar seasonality;
- lets-wait-awhile-2020/{ger,gb}_ci.csv: DE and GB 2020 -> wind seasonality (measured, not used:
  it made the fit to Aug-Dec 2022 worse; see docs/signals.md).
Prints the numbers that signals/typical.py holds, so a change of data can be checked against them.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np

from carbonplan.catalog.zones import ZONES
from carbonplan.signals.typical import typical_at


def hourly_47(path: Path) -> dict[int, float]:
    """epoch hour start -> value; polls deduplicated (last wins)."""
    out: dict[int, float] = {}
    with path.open() as fh:
        for r in csv.DictReader(fh):
            try:
                t = datetime.fromisoformat(r["zone_datetime"].replace("Z", "+00:00"))
                out[int(t.timestamp())] = float(r["carbon_intensity_avg"])
            except (ValueError, KeyError):
                continue
    return out


def daily_shapes(root: Path) -> dict[str, list[float]]:
    by_class: dict[str, list[list[float]]] = defaultdict(list)
    for zone, (_name, _avg, offset, mix) in ZONES.items():
        f = root / f"{zone}.csv"
        if not f.is_file():
            continue
        series = hourly_47(f)
        mean = statistics.mean(series.values())
        per_hour: dict[int, list[float]] = defaultdict(list)
        for t, v in series.items():
            per_hour[int((t / 3600 + offset) % 24)].append(v)
        by_class[mix].append([statistics.mean(per_hour[h]) / mean for h in range(24)])
    return {mix: [statistics.mean(s[h] for s in shapes) for h in range(24)]
            for mix, shapes in by_class.items()}


def monthly_factors(path: Path, time_col: str, value_col: str, year: str) -> list[float]:
    by_month: dict[int, list[float]] = defaultdict(list)
    with path.open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if not r.get(time_col, "").startswith(year):
                continue
            try:
                by_month[int(r[time_col][5:7])].append(float(r[value_col]))
            except (ValueError, KeyError):
                continue
    means = [statistics.mean(by_month[m]) for m in range(1, 13)]
    annual = statistics.mean(means)
    return [m / annual for m in means]


def first_harmonic(factors: list[float]) -> tuple[float, float]:
    """(amplitude, day of year of the peak) of monthly factors."""
    ang = [2 * math.pi * (m + 0.5) / 12 for m in range(12)]
    a = sum(x * math.cos(t) for x, t in zip(factors, ang, strict=True)) / 6
    b = sum(x * math.sin(t) for x, t in zip(factors, ang, strict=True)) / 6
    return math.hypot(a, b), (math.atan2(b, a) / (2 * math.pi) * 365.25) % 365.25


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "shared" / "data"
    em47 = root / "electricitymaps-api-47zones-2022"
    if not em47.is_dir():
        print(f"no data at {root}", file=sys.stderr)
        return 1
    print("daily shape per mix class (hour-of-day factor, local standard time):")
    for mix, shape in sorted(daily_shapes(em47).items()):
        print(f"  {mix:8s} min {min(shape):.3f} max {max(shape):.3f}: "
              + ", ".join(f"{x:.3f}" for x in shape))
    cal = root / "electricitymaps-hourly-2021-2023" / "US-CAL-CISO_2021_hourly.csv"
    lwa = root / "lets-wait-awhile-2020"
    seasonal = {"solar (US-CAL-CISO 2021, LCA)": monthly_factors(
        cal, "Datetime (UTC)", "Carbon Intensity gCO₂eq/kWh (LCA)", "2021")}
    de = monthly_factors(lwa / "ger_ci.csv", "Time", "Carbon Intensity", "2020")
    gb = monthly_factors(lwa / "gb_ci.csv", "Time", "Carbon Intensity", "2020")
    seasonal["wind (mean of DE and GB 2020)"] = [(a + b) / 2 for a, b in zip(de, gb, strict=True)]
    print("seasonal first harmonic:")
    for name, factors in seasonal.items():
        amp, peak = first_harmonic(factors)
        print(f"  {name}: amplitude {amp:.3f}, peak day {peak:.0f}; monthly "
              + " ".join(f"{x:.2f}" for x in factors))
    print("fit to Electricity Maps hourly data, Aug-Dec 2022 (MAE, % of the zone mean):")
    print(f"  {'zone':14s} {'mix':8s} {'model':>6s} {'flat':>6s}")
    gains: dict[str, list[float]] = defaultdict(list)
    for zone, (_name, avg, _off, mix) in ZONES.items():
        f = em47 / f"{zone}.csv"
        if not f.is_file():
            continue
        series = hourly_47(f)
        t = np.array(list(series)) + 1800
        actual = np.array(list(series.values()))
        model = np.mean(np.abs(typical_at(zone, t) - actual)) / actual.mean()
        flat = np.mean(np.abs(avg - actual)) / actual.mean()
        gains[mix].append(flat - model)
        print(f"  {zone:14s} {mix:8s} {model:6.1%} {flat:6.1%}")
    for mix, g in sorted(gains.items()):
        print(f"  class {mix}: model better than a flat level by {statistics.mean(g):.1%} "
              "of the mean on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
