"""Resampling a series onto a slot grid: time-weighted means of the points each slot overlaps.

Five-minute WattTime points become hourly means; hourly points cut into half-hour slots repeat.
A slot whose covered share is below `min_coverage` becomes a gap (filled later by blending); its
flag is the largest flag among the points it overlaps (a slot mixing measurement and forecast is a
forecast). Vectorized: the union of both grids' edges cuts time into pieces that lie in exactly one
point and one slot. Must not import the store, requests or config.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from carbonplan.signals.series import GAP, Series, epoch_s


def resample(series: Series, start: datetime, n_slots: int, slot_s: int,
             min_coverage: float = 0.5) -> Series:
    """`series` on the grid [start + k*slot_s, start + (k+1)*slot_s), k < n_slots.

    Returns:
        A Series with values float (n_slots,) and flags int8 (n_slots,); NaN/GAP where the
        source covers less than `min_coverage` of a slot.
    """
    if slot_s <= 0 or n_slots < 0:
        raise ValueError("resample: slot_s must be > 0 and n_slots >= 0")
    t0 = epoch_s(start)
    src0 = epoch_s(series.start)
    values = np.full(n_slots, np.nan)
    flags = np.full(n_slots, GAP, dtype=np.int8)
    out = series.with_(start=start, step_s=slot_s, values=values, flags=flags)
    lo = max(t0, src0)
    hi = min(t0 + n_slots * slot_s, src0 + series.n * series.step_s)
    if n_slots == 0 or series.n == 0 or hi <= lo:
        return out
    edges = np.union1d(src0 + series.step_s * np.arange(series.n + 1, dtype=np.int64),
                       t0 + slot_s * np.arange(n_slots + 1, dtype=np.int64))
    edges = np.unique(np.clip(edges, lo, hi))
    length = np.diff(edges).astype(float)
    mid2 = edges[:-1] + edges[1:]  # twice the midpoint: stays integral
    src = (mid2 - 2 * src0) // (2 * series.step_s)
    dst = (mid2 - 2 * t0) // (2 * slot_s)
    v = series.values[src]
    ok = np.isfinite(v) & (length > 0)
    covered = np.bincount(dst[ok], weights=length[ok], minlength=n_slots)
    total = np.bincount(dst[ok], weights=(v * length)[ok], minlength=n_slots)
    np.maximum.at(flags, dst[ok], series.flags[src[ok]])
    full = covered >= min_coverage * slot_s
    values[full] = total[full] / covered[full]
    flags[~full] = GAP
    return out
