"""The forecast cache: series to and from the store's `forecasts` table.

Each fetched series is one row at its native resolution: forecasts with the provider's issue
time, history with `issued_at` at the end of its last point (so overlap queries stay in SQL).
The row's `provider` column holds the provider's cache key ("electricitymaps:lifecycle"), so
lifecycle and direct numbers, or national and regional UK data, never stand in for each other.
Values are JSON numbers (null in gaps); flags one letter per point (m, f, e, -). No key, token or
header is ever part of a row. All SQL lives in store/repo.py.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from carbonplan.signals.series import Series

if TYPE_CHECKING:
    from carbonplan.store.repo import Store
    from carbonplan.store.tables import ForecastRow


def to_row(series: Series, cache_key: str) -> ForecastRow:
    from carbonplan.store.tables import ForecastRow

    values = [None if not math.isfinite(v) else round(float(v), 3) for v in series.values]
    return ForecastRow(zone=series.zone, provider=cache_key, kind=series.kind,
                       signal=series.signal, issued_at=series.issued_at,
                       fetched_at=series.fetched_at or series.issued_at, start=series.start,
                       step_s=series.step_s, values_json=json.dumps(values),
                       flags_json=json.dumps(series.flags_text()))


def from_row(row: ForecastRow, *, provider: str, source: str, origin: str) -> Series:
    values = np.array([np.nan if v is None else float(v) for v in json.loads(row.values_json)])
    flags = Series.flags_from_text(json.loads(row.flags_json))
    return Series(zone=row.zone, provider=provider, source=source, signal=row.signal,
                  kind=row.kind, start=row.start, step_s=row.step_s, values=values, flags=flags,
                  issued_at=row.issued_at, fetched_at=row.fetched_at, origin=origin)


class SeriesCache:
    """Reads and writes series for one provider (by its cache key)."""

    def __init__(self, store: Store, *, provider: str, cache_key: str, source: str) -> None:
        self.store = store
        self.provider = provider
        self.cache_key = cache_key
        self.source = source

    def save(self, series: Series) -> None:
        self.store.save_series(to_row(series, self.cache_key))

    def latest_forecast(self, zone: str, origin: str) -> Series | None:
        row = self.store.latest_series(zone, self.cache_key, "forecast")
        if row is None:
            return None
        return from_row(row, provider=self.provider, source=self.source, origin=origin)

    def history(self, zone: str, start: datetime, end: datetime) -> list[Series]:
        """Cached history overlapping [start, end), oldest fetch first."""
        return [from_row(r, provider=self.provider, source=self.source, origin="cached")
                for r in self.store.series_between(zone, self.cache_key, "history", start, end)]
