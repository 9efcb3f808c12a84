"""Carbon intensity from CSV files: a file, or every *.csv in a directory.

Two formats, told apart by the header:
- Electricity Maps' hourly data-portal export: `Datetime (UTC)`, `Zone Id`,
  `Carbon Intensity gCO₂eq/kWh (direct)`, `Carbon Intensity gCO₂eq/kWh (LCA)`, `Data Estimated`...;
  `emission_factor_type` picks the LCA (lifecycle) or direct column; estimated hours are flagged.
- simple: `datetime,zone,gco2_per_kwh` (ISO 8601 times; no offset means UTC), measurements.
A zone's step is the most common spacing of its rows. As a "forecast" the files are replayed as
perfect foresight (what-if simulation, benchmarks): the points keep their file flags. Files are
read once per process and read again when their size or modification time changes.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from carbonplan.signals.errors import ProviderRejected
from carbonplan.signals.providers.base import Provider
from carbonplan.signals.series import Flag, Series, floor_time
from carbonplan.signals.validate import RawPoint, build_series, parse_time

EM_TIME, EM_ZONE, EM_ESTIMATED = "Datetime (UTC)", "Zone Id", "Data Estimated"
EM_VALUE = {"lifecycle": "Carbon Intensity gCO₂eq/kWh (LCA)",
            "direct": "Carbon Intensity gCO₂eq/kWh (direct)"}
SIMPLE = ("datetime", "zone", "gco2_per_kwh")
FIELD = "carbon.csv.path"

_cache: dict[tuple[str, str, str], tuple[tuple, dict[str, list[RawPoint]]]] = {}


def _number(text: str | None) -> Any:
    """A float from CSV text; the text itself when it is not a number (validation rejects it)."""
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _time(text: str | None) -> Any:
    """Parsed once when the file is read; bad text is kept for validation to count."""
    return parse_time(text) or text


def _read(path: Path, fmt: str, factor: str) -> dict[str, list[RawPoint]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        em = EM_TIME in header and EM_ZONE in header
        simple = all(c in header for c in SIMPLE)
        kind = fmt if fmt != "auto" else "electricitymaps" if em else "simple" if simple else ""
        if kind == "electricitymaps" and not (em and EM_VALUE[factor] in header):
            raise ProviderRejected(FIELD, f"{path}: not an Electricity Maps export with the "
                                          f"column '{EM_VALUE[factor]}'")
        if kind == "simple" and not simple:
            raise ProviderRejected(FIELD, f"{path}: expected the columns {','.join(SIMPLE)}")
        if not kind:
            raise ProviderRejected(FIELD, f"{path}: unrecognized header; expected an Electricity "
                                          f"Maps export or the columns {','.join(SIMPLE)}")
        out: dict[str, list[RawPoint]] = defaultdict(list)
        for row in reader:
            if kind == "electricitymaps":
                est = (row.get(EM_ESTIMATED) or "").strip().lower() == "true"
                out[(row.get(EM_ZONE) or "").strip()].append(RawPoint(
                    _time(row.get(EM_TIME)), _number(row.get(EM_VALUE[factor])),
                    Flag.ESTIMATE if est else Flag.MEASUREMENT))
            else:
                out[(row.get("zone") or "").strip()].append(RawPoint(
                    _time(row.get("datetime")), _number(row.get("gco2_per_kwh")),
                    Flag.MEASUREMENT))
    return dict(out)


def _step_s(points: list[RawPoint]) -> int:
    """The most common spacing between consecutive distinct times (3600 when undecidable)."""
    times = np.unique([int(t.timestamp()) for p in points if (t := parse_time(p.time))])
    diffs = np.diff(times)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return 3600
    vals, counts = np.unique(diffs, return_counts=True)
    return int(vals[np.argmax(counts)])


class CsvFile(Provider):
    name = "csv"
    cacheable = False  # the files are the record already
    horizon_h = float("inf")

    @property
    def cfg(self) -> Any:
        return self.settings.csv

    @property
    def source(self) -> str:
        return f"CSV {self.cfg.path}"

    @property
    def signal(self) -> str:
        return "average"

    def _files(self) -> list[Path]:
        if not self.cfg.path:
            raise ProviderRejected(FIELD, "is required for provider 'csv' (a file or a directory)")
        root = Path(self.cfg.path).expanduser()
        if root.is_file():
            return [root]
        if root.is_dir():
            files = sorted(p for p in root.glob("*.csv") if p.is_file())
            if not files:
                raise ProviderRejected(FIELD, f"no *.csv files in {root}")
            return files
        raise ProviderRejected(FIELD, f"no such file or directory: {root}")

    def _zones(self) -> dict[str, list[RawPoint]]:
        """Points per zone over all files (re-read when a file's size or mtime changes)."""
        keys = []
        for f in self._files():
            st = os.stat(f)
            keys.append(((str(f.resolve()), self.cfg.format, self.cfg.emission_factor_type),
                         (st.st_size, st.st_mtime_ns)))
        if getattr(self, "_merged_keys", None) == keys:
            return self._merged
        merged: dict[str, list[RawPoint]] = defaultdict(list)
        for key, stamp in keys:
            hit = _cache.get(key)
            if hit is None or hit[0] != stamp:
                hit = (stamp, _read(Path(key[0]), self.cfg.format, self.cfg.emission_factor_type))
                _cache[key] = hit
            for zone, pts in hit[1].items():
                merged[zone] += pts
        self._merged_keys, self._merged = keys, dict(merged)
        return self._merged

    def check_zone(self, zone: str) -> None:
        zones = self._zones()
        if zone not in zones:
            shown = ", ".join(sorted(zones)[:12]) + (", ..." if len(zones) > 12 else "")
            raise ProviderRejected("zone", f"no rows for zone '{zone}' in {self.cfg.path} "
                                           f"(zones there: {shown or 'none'})")

    def _series(self, zone: str, start: datetime, end: datetime, kind: str) -> Series:
        self.check_zone(zone)
        points = self._zones()[zone]
        step = _step_s(points)
        return build_series(points, zone=zone, provider=self.name, source=self.source,
                            signal=self.signal, kind=kind, step_s=step,
                            issued_at=start if kind == "forecast" else None,
                            fetched_at=self.clock(), max_bad_fraction=self.max_bad_fraction,
                            window=(floor_time(start, step), end), what=f"CSV {self.cfg.path}")

    def forecast(self, zone: str, start: datetime, end: datetime) -> Series:
        return self._series(zone, start, end, "forecast")

    def history(self, zone: str, start: datetime, end: datetime) -> Series:
        return self._series(zone, start, end, "history")
