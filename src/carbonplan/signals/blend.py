"""Filling gaps and the time beyond a provider's horizon with the zone's typical profile.

A forecast says more than the typical profile near its edge and less far from it. So a slot
without provider data takes the typical value scaled by the provider's ratio to typical at the
nearest covered edge (mean of up to `edge_slots` covered slots there), and that ratio decays
towards 1 with the distance to the edge:

    ci = typical * (1 + (ratio - 1) * exp(-distance_h / blend_h))

With no provider data at all the result is the typical profile. Every filled slot is flagged
`ESTIMATE`. Must not import the store, requests or config.
"""

from __future__ import annotations

import numpy as np

from carbonplan.signals.series import Flag

RATIO_BOUNDS = (0.2, 5.0)  # an edge ratio outside this says more about the model than the grid


def _edge_ratio(values: np.ndarray, typical: np.ndarray, idx: np.ndarray) -> float:
    r = float(values[idx].mean() / max(float(typical[idx].mean()), 1e-9))
    return min(max(r, RATIO_BOUNDS[0]), RATIO_BOUNDS[1])


def fill_gaps(values: np.ndarray, flags: np.ndarray, typical: np.ndarray, *, slot_h: float,
              blend_h: float, edge_slots: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Values and flags with every NaN replaced by the blended typical profile.

    Args:
        values: float (T,): provider values on the slot grid, NaN where missing.
        flags: int8 (T,): their flags.
        typical: float (T,): the zone's typical profile on the same grid.
        slot_h: slot length in hours (distances are measured in hours).
        blend_h: e-folding time of the edge anomaly, hours (0: typical right away).

    Returns:
        (values, flags), new arrays of shape (T,).
    """
    values = values.astype(float).copy()
    flags = flags.copy()
    gap = ~np.isfinite(values)
    if not gap.any():
        return values, flags
    if gap.all():
        return typical.astype(float).copy(), np.full(flags.shape, Flag.ESTIMATE, dtype=np.int8)
    n = values.shape[0]
    pos = np.arange(n)
    run_id = np.cumsum(gap)  # covered slots of one contiguous run share an id
    # nearest covered slot on each side (-1 / n when none)
    left = np.maximum.accumulate(np.where(~gap, pos, -1))
    right = np.minimum.accumulate(np.where(~gap, pos, n)[::-1])[::-1]
    far = np.iinfo(np.int64).max
    dl = np.where(left >= 0, pos - left, far)
    dr = np.where(right < n, right - pos, far)
    edge = np.where(dl <= dr, left, right)
    dist = np.minimum(dl, dr)
    ratios = np.ones(n)
    for e in np.unique(edge[gap]):
        near = ~gap & (run_id == run_id[e]) & (np.abs(pos - e) < edge_slots)
        ratios[edge == e] = _edge_ratio(values, typical, np.flatnonzero(near))
    decay = np.exp(-dist * slot_h / blend_h) if blend_h > 0 else np.zeros(n)
    blended = typical * (1.0 + (ratios - 1.0) * decay)
    values[gap] = blended[gap]
    flags[gap] = Flag.ESTIMATE
    return values, flags
