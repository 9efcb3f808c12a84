"""A carbon-intensity series: gCO2e/kWh on a regular time grid, with a flag per point.

One type serves a provider's native resolution (5-minute WattTime, half-hour UK grid, hourly
Electricity Maps) and the slot grid the planner asks for; `resample.py` converts between the two.
Point `i` covers [start + i*step_s, start + (i+1)*step_s). A gap is NaN with flag `GAP`.
Must not import the store, the planner, config or requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

import numpy as np


class Flag(IntEnum):
    """What a point is. Ordered by how much it is a guess: resampling keeps the largest."""

    MEASUREMENT = 0  # the provider's realized value
    FORECAST = 1     # the provider's forecast
    ESTIMATE = 2     # modelled: offline model, blend into the typical profile, estimated history


GAP = -1  # flag of a point with no value
FLAG_NAMES = {Flag.MEASUREMENT: "measurement", Flag.FORECAST: "forecast",
              Flag.ESTIMATE: "estimate"}
FLAG_LETTERS = {Flag.MEASUREMENT: "m", Flag.FORECAST: "f", Flag.ESTIMATE: "e", GAP: "-"}
_LETTER_FLAGS = {v: int(k) for k, v in FLAG_LETTERS.items()}

SIGNALS = ("average", "marginal")
KINDS = ("forecast", "history")
# where a series came from, for provenance
ORIGINS = ("live", "cached", "stale", "model")


def epoch_s(dt: datetime) -> int:
    """Whole seconds since the epoch of an aware datetime."""
    return int(dt.timestamp())


def from_epoch(s: float) -> datetime:
    return datetime.fromtimestamp(int(s), UTC)


def floor_time(dt: datetime, step_s: int) -> datetime:
    """`dt` rounded down to a multiple of `step_s` since the epoch (hours, half-hours...)."""
    s = epoch_s(dt)
    return from_epoch(s - s % step_s)


@dataclass(frozen=True, eq=False)
class Series:
    """Values on a regular grid with their provenance. Arrays have shape (n,)."""

    zone: str
    provider: str          # registry name: offline, electricitymaps, watttime, ukgrid, csv
    source: str            # label for people: "Electricity Maps v3 (lifecycle)"
    signal: str            # average | marginal
    kind: str              # forecast | history
    start: datetime        # aware UTC: start of point 0
    step_s: int            # seconds per point
    values: np.ndarray     # float64 (n,): gCO2e/kWh, NaN in gaps
    flags: np.ndarray      # int8 (n,): Flag, GAP where values is NaN
    issued_at: datetime    # when the provider issued it (forecast) / its last point ends (history)
    fetched_at: datetime | None = None
    dropped: int = 0       # points the provider sent that failed validation
    origin: str = "live"   # live | cached | stale (last good, provider failed) | model
    note: str = ""         # why this is not a fresh provider series, when it is not
    provider_until: datetime | None = None  # after blending: where the provider's data ended

    def __post_init__(self) -> None:
        if self.values.shape != self.flags.shape or self.values.ndim != 1:
            raise ValueError(f"Series: values {self.values.shape} and flags {self.flags.shape} "
                             "must be (n,)")
        if self.step_s <= 0:
            raise ValueError("Series.step_s must be > 0")
        if self.start.tzinfo is None or self.issued_at.tzinfo is None:
            raise ValueError("Series times must be aware")
        if self.signal not in SIGNALS or self.kind not in KINDS or self.origin not in ORIGINS:
            raise ValueError(f"Series: bad signal/kind/origin {self.signal}/{self.kind}/"
                             f"{self.origin}")

    # -- shape and time ------------------------------------------------------------------------

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.step_s * self.n)

    def times(self) -> list[datetime]:
        """Start of each point."""
        return [self.start + timedelta(seconds=self.step_s * i) for i in range(self.n)]

    def times_s(self) -> np.ndarray:
        """int64 (n,): start of each point, epoch seconds."""
        return epoch_s(self.start) + self.step_s * np.arange(self.n, dtype=np.int64)

    @property
    def covered_until(self) -> datetime | None:
        """End of the last point with a value (a forecast's horizon), None when all are gaps."""
        ok = np.flatnonzero(np.isfinite(self.values))
        if ok.size == 0:
            return None
        return self.start + timedelta(seconds=self.step_s * (int(ok[-1]) + 1))

    @property
    def is_estimate(self) -> bool:
        """True when every point is an estimate (offline model, or no provider data at all)."""
        return bool(self.n) and bool(np.all(self.flags == Flag.ESTIMATE))

    def counts(self) -> dict[str, int]:
        """Points per flag name (and 'gap')."""
        out = {name: int(np.sum(self.flags == f)) for f, name in FLAG_NAMES.items()}
        out["gap"] = int(np.sum(self.flags == GAP))
        return out

    def with_(self, **changes: Any) -> Series:
        return replace(self, **changes)

    # -- (de)serialization ---------------------------------------------------------------------

    def flags_text(self) -> str:
        """One letter per point: m measurement, f forecast, e estimate, - gap."""
        return "".join(FLAG_LETTERS[int(f) if f == GAP else Flag(int(f))] for f in self.flags)

    @staticmethod
    def flags_from_text(text: str) -> np.ndarray:
        return np.array([_LETTER_FLAGS[c] for c in text], dtype=np.int8)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metadata and one entry per point."""
        return {
            "zone": self.zone, "provider": self.provider, "source": self.source,
            "signal": self.signal, "kind": self.kind, "origin": self.origin,
            "estimate": self.is_estimate, "issued_at": self.issued_at.isoformat(),
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
            "step_s": self.step_s, "dropped": self.dropped, "note": self.note,
            "provider_until": self.provider_until.isoformat() if self.provider_until else None,
            "unit": "gCO2e/kWh",
            "points": [
                {"start": t.isoformat(),
                 "g_per_kwh": None if not np.isfinite(v) else round(float(v), 2),
                 "flag": "gap" if f == GAP else FLAG_NAMES[Flag(int(f))]}
                for t, v, f in zip(self.times(), self.values, self.flags, strict=True)
            ],
        }


def empty_like(series: Series, start: datetime, n: int, step_s: int) -> Series:
    """A series of `n` gaps on a new grid, keeping the provenance of `series`."""
    return series.with_(start=start, step_s=step_s, values=np.full(n, np.nan),
                        flags=np.full(n, GAP, dtype=np.int8))
