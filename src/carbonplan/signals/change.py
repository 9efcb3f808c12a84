"""Change detection for the daemon: does a new forecast differ enough to re-plan?

Compared are only the slots the plan uses, in the zones it uses ("planned" weights, e.g. the kWh
planned per zone and slot, or a boolean mask), over the time both matrices cover (the new one
usually starts a cycle later). Per zone:

    mean_abs  = sum(w * |new - used|) / sum(w)          gCO2e/kWh
    rel       = mean_abs / (sum(w * used) / sum(w))

A zone changed when `rel >= threshold` and `mean_abs >= min_g_per_kwh` (the floor keeps a clean
grid's 20 -> 24 g/kWh from looking like a 20% change); a planned zone missing from the new
matrix always changed. The change matters when any zone changed. Must not import the store,
requests or config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbonplan.signals.matrix import CIMatrix


@dataclass(frozen=True)
class ZoneChange:
    """How one planned zone's forecast moved over the planned slots it shares with the new one."""

    zone: str
    slots: int                   # planned slots compared
    mean_abs_g_per_kwh: float    # weighted mean |new - used|
    mean_delta_g_per_kwh: float  # weighted mean (new - used): > 0 dirtier than planned
    max_abs_g_per_kwh: float
    rel_change: float            # mean_abs / weighted mean of the used forecast
    changed: bool
    reason: str = ""             # "missing" when the new matrix lacks the zone


@dataclass(frozen=True)
class ChangeReport:
    matters: bool
    changed: tuple[str, ...]                 # zones that changed, largest relative change first
    zones: dict[str, ZoneChange] = field(default_factory=dict)  # every planned zone compared
    threshold: float = 0.0
    min_g_per_kwh: float = 0.0

    def summary(self) -> str:
        """One line for logs: which zones changed and by how much."""
        if not self.matters:
            return "no change that matters"
        parts = []
        for z in self.changed:
            c = self.zones[z]
            parts.append(f"{z}: {c.reason}" if c.reason else
                         f"{z}: {c.rel_change:.0%} mean absolute change "
                         f"({c.mean_delta_g_per_kwh:+.0f} g/kWh) over {c.slots} planned slots")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"matters": self.matters, "changed": list(self.changed),
                "threshold": self.threshold, "min_g_per_kwh": self.min_g_per_kwh,
                "zones": {z: c.__dict__ for z, c in self.zones.items()}}


def detect_change(used: CIMatrix, new: CIMatrix, planned: np.ndarray | None = None, *,
                  threshold: float = 0.10, min_g_per_kwh: float = 10.0) -> ChangeReport:
    """Say whether `new` differs from the matrix a plan `used` where the plan runs work.

    Args:
        used: the matrix the current plan was made with.
        new: a fresh matrix (same slot length; its t0 may be later by whole slots).
        planned: weights float or bool (Z_used, T_used), in `used`'s zone and slot order: > 0
            where the plan runs work (e.g. planned kWh). None weighs every slot of every zone.
        threshold: relative change that matters (carbon.change_threshold).
        min_g_per_kwh: absolute floor of the mean change (carbon.change_min_g_per_kwh).

    Raises:
        ValueError: different slot lengths, t0 not a whole number of slots apart, or `planned`
            of the wrong shape.
    """
    if used.slot_s != new.slot_s:
        raise ValueError(f"detect_change: slot lengths differ ({used.slot_h} h vs {new.slot_h} h)")
    offset_s = (new.t0 - used.t0).total_seconds()
    if offset_s % used.slot_s:
        raise ValueError("detect_change: t0 of the two matrices is not a whole number of slots "
                         "apart")
    w = (np.ones(used.ci_g_per_kwh.shape) if planned is None
         else np.asarray(planned, dtype=float))
    if w.shape != used.ci_g_per_kwh.shape:
        raise ValueError(f"detect_change: planned has shape {w.shape}, expected "
                         f"{used.ci_g_per_kwh.shape}")
    shift = int(offset_s // used.slot_s)  # slot t of `used` is slot t - shift of `new`
    t_used = np.arange(used.n_slots)
    t_new = t_used - shift
    common = (t_new >= 0) & (t_new < new.n_slots)
    zones: dict[str, ZoneChange] = {}
    for zi, zone in enumerate(used.zones):
        wz = np.where(common, np.maximum(w[zi], 0.0), 0.0)
        if not wz.any():
            continue
        mask = wz > 0
        if zone not in new.zones:
            zones[zone] = ZoneChange(zone, int(mask.sum()), float("nan"), float("nan"),
                                     float("nan"), float("inf"), True, "missing")
            continue
        old = used.ci_g_per_kwh[zi, mask]
        cur = new.row(zone)[t_new[mask]]
        ww = wz[mask]
        delta = cur - old
        mean_abs = float(np.sum(ww * np.abs(delta)) / ww.sum())
        base = float(np.sum(ww * old) / ww.sum())
        rel = mean_abs / base if base > 0 else (float("inf") if mean_abs > 0 else 0.0)
        zones[zone] = ZoneChange(
            zone=zone, slots=int(mask.sum()), mean_abs_g_per_kwh=mean_abs,
            mean_delta_g_per_kwh=float(np.sum(ww * delta) / ww.sum()),
            max_abs_g_per_kwh=float(np.max(np.abs(delta))), rel_change=rel,
            changed=rel >= threshold and mean_abs >= min_g_per_kwh)
    changed = tuple(sorted((z for z, c in zones.items() if c.changed),
                           key=lambda z: -zones[z].rel_change))
    return ChangeReport(matters=bool(changed), changed=changed, zones=zones,
                        threshold=threshold, min_g_per_kwh=min_g_per_kwh)


def detect_change_for(settings: Any, used: CIMatrix, new: CIMatrix,
                      planned: np.ndarray | None = None) -> ChangeReport:
    """`detect_change` with the thresholds of the `[carbon]` config table."""
    return detect_change(used, new, planned, threshold=settings.change_threshold,
                         min_g_per_kwh=settings.change_min_g_per_kwh)
