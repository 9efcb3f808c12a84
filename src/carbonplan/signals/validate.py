"""Validation of provider points into a `Series`: nothing unchecked reaches the planner.

Every point must have a parseable time and a finite value in [0, 2000) gCO2e/kWh (no grid is
above ~1,200; 2,000 leaves room for marginal signals of coal plants). Points are sorted, duplicate
times keep the last one sent, and points off the provider's time grid are dropped. Bad points are
dropped and counted; a response where more than `max_bad_fraction` of the points are bad (or none
is good) is rejected as a whole, because a provider that sends mostly garbage is not to be trusted
for the rest either. Must not import the store, requests or config.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from carbonplan.signals.errors import ProviderResponseError
from carbonplan.signals.series import GAP, Flag, Series, epoch_s, from_epoch

MAX_G_PER_KWH = 2000.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawPoint:
    """One point as a provider sent it: time and value still unchecked."""

    time: Any   # datetime, ISO 8601 text, or junk
    value: Any  # number, or junk (None, text, NaN...)
    flag: Flag


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime or ISO 8601 text ('Z' allowed); None if invalid.

    Times without an offset are taken as UTC: every provider documents UTC.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
        except ValueError:
            return None
    else:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def within(points: Iterable[RawPoint], start: datetime, end: datetime) -> list[RawPoint]:
    """Points starting in [start, end), plus those with a bad time (validation counts them).

    Chunked calls filter each chunk this way, so chunks never share a point whether or not the
    API treats `end` as inclusive.
    """
    out = []
    for p in points:
        t = parse_time(p.time)
        if t is None or start <= t < end:
            out.append(p)
    return out


def check_value(value: Any) -> tuple[float | None, str]:
    """The value as float, or None and the reason it is bad."""
    if value is None:
        return None, "null"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "not a number"
    v = float(value)
    if not math.isfinite(v):
        return None, "not finite"
    if v < 0:
        return None, "negative"
    if v >= MAX_G_PER_KWH:
        return None, f">= {MAX_G_PER_KWH:.0f} g/kWh"
    return v, ""


def build_series(points: Iterable[RawPoint], *, zone: str, provider: str, source: str,
                 signal: str, kind: str, step_s: int, issued_at: datetime | None,
                 fetched_at: datetime, max_bad_fraction: float = 0.5,
                 window: tuple[datetime, datetime] | None = None, what: str = "response",
                 ) -> Series:
    """Validate provider points into a regular series at `step_s`.

    Args:
        points: as received; any order, possibly with junk.
        step_s: the provider's native point length in seconds.
        issued_at: the provider's issue time; None means `fetched_at` (history: its last point).
        window: keep only points starting in [start, end) (not counted as bad).
        what: names the response in messages ("Electricity Maps /carbon-intensity/forecast").

    Returns:
        A `Series` whose `dropped` counts the bad points.

    Raises:
        ProviderResponseError: no point at all, or more than `max_bad_fraction` of them bad.
    """
    received = 0
    bad: Counter[str] = Counter()
    good: dict[int, tuple[float, Flag]] = {}
    lo = epoch_s(window[0]) if window else None
    hi = epoch_s(window[1]) if window else None
    for p in points:
        t = parse_time(p.time)
        if t is None:
            received += 1
            bad["bad time"] += 1
            continue
        ts = epoch_s(t)
        if lo is not None and hi is not None and not lo <= ts < hi:
            continue
        received += 1
        v, why = check_value(p.value)
        if v is None:
            bad[why] += 1
            continue
        if ts in good:
            bad["duplicate time"] += 1
        good[ts] = (v, p.flag)  # a later duplicate replaces the earlier one
    if received == 0:
        raise ProviderResponseError(f"{what}: no data points")
    times = np.array(sorted(good), dtype=np.int64)
    if times.size:
        off_grid = (times - times[0]) % step_s != 0
        if off_grid.any():
            bad["off the time grid"] += int(off_grid.sum())
            times = times[~off_grid]
    n_bad = sum(bad.values())
    if times.size == 0 or n_bad > max_bad_fraction * received:
        detail = ", ".join(f"{n} {why}" for why, n in bad.most_common())
        raise ProviderResponseError(f"{what}: {n_bad} of {received} points invalid ({detail}); "
                                    "response rejected")
    if n_bad:
        log.warning("%s for %s: dropped %d of %d points (%s)", what, zone, n_bad, received,
                    ", ".join(f"{n} {why}" for why, n in bad.most_common()))
    idx = (times - times[0]) // step_s
    n = int(idx[-1]) + 1
    values = np.full(n, np.nan)
    flags = np.full(n, GAP, dtype=np.int8)
    values[idx] = [good[int(t)][0] for t in times]
    flags[idx] = [int(good[int(t)][1]) for t in times]
    start = from_epoch(int(times[0]))
    last_end = from_epoch(int(times[-1]) + step_s)
    if issued_at is None:
        issued_at = last_end if kind == "history" else fetched_at
    return Series(zone=zone, provider=provider, source=source, signal=signal, kind=kind,
                  start=start, step_s=step_s, values=values, flags=flags, issued_at=issued_at,
                  fetched_at=fetched_at, dropped=n_bad)
