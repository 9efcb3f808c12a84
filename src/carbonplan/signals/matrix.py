"""The planner's view of carbon intensity: one (zone, slot) array with provenance per zone.

`CIMatrix` is what `SignalService.build_ci_matrix` returns and what change detection compares.
The planner's instance builder gathers rows for its pools with `rows(zone_of_each_pool)` and puts
`meta()` into `Instance.meta`. Must not import the store, requests or config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from carbonplan.signals.series import FLAG_NAMES, Flag


@dataclass(frozen=True)
class ZoneProvenance:
    """Where one zone's row came from."""

    zone: str
    provider: str            # registry name of the provider asked
    source: str              # label of what actually served the numbers
    signal: str              # average | marginal
    origin: str              # live | cached | stale | model
    issued_at: datetime
    fetched_at: datetime | None
    covered_until: datetime | None  # end of provider data; later slots blend into typical
    n_measurement: int
    n_forecast: int
    n_estimate: int
    dropped: int             # invalid points dropped from the provider's response
    note: str                # why the provider's fresh forecast is not (all) there, else ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("issued_at", "fetched_at", "covered_until"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZoneProvenance:
        d = dict(d)
        for k in ("issued_at", "fetched_at", "covered_until"):
            d[k] = datetime.fromisoformat(d[k]) if d.get(k) else None
        return cls(**d)


@dataclass(frozen=True, eq=False)
class CIMatrix:
    """Carbon intensity for Z zones and T slots starting at `t0`, each `slot_h` long."""

    zones: tuple[str, ...]                  # (Z,)
    t0: datetime                            # start of slot 0 (aware UTC)
    slot_h: float
    ci_g_per_kwh: np.ndarray                # float (Z, T): gCO2e/kWh
    flags: np.ndarray                       # int8 (Z, T): Flag
    provenance: tuple[ZoneProvenance, ...]  # (Z,)
    built_at: datetime | None = None

    def __post_init__(self) -> None:
        z = len(self.zones)
        if self.ci_g_per_kwh.ndim != 2 or self.ci_g_per_kwh.shape[0] != z:
            raise ValueError(f"CIMatrix.ci_g_per_kwh: shape {self.ci_g_per_kwh.shape}, "
                             f"expected ({z}, T)")
        if self.flags.shape != self.ci_g_per_kwh.shape or len(self.provenance) != z:
            raise ValueError("CIMatrix: flags and provenance must match ci_g_per_kwh")
        if len(set(self.zones)) != z:
            raise ValueError("CIMatrix.zones must be distinct")
        if not np.all(np.isfinite(self.ci_g_per_kwh)):
            raise ValueError("CIMatrix.ci_g_per_kwh must be finite")

    @property
    def n_slots(self) -> int:
        return int(self.ci_g_per_kwh.shape[1])

    @property
    def slot_s(self) -> int:
        return round(self.slot_h * 3600)

    @property
    def end(self) -> datetime:
        return self.t0 + timedelta(seconds=self.slot_s * self.n_slots)

    def index(self, zone: str) -> int:
        return self.zones.index(zone)

    def row(self, zone: str) -> np.ndarray:
        """float (T,): one zone's carbon intensity."""
        return self.ci_g_per_kwh[self.index(zone)]

    def rows(self, zones: Sequence[str]) -> np.ndarray:
        """float (len(zones), T): e.g. the zone of each pool -> `Instance.ci_g_per_kwh[pool, slot]`.
        """
        pos = {z: i for i, z in enumerate(self.zones)}
        return self.ci_g_per_kwh[np.array([pos[z] for z in zones], dtype=np.intp)]

    def as_source(self) -> Callable[[Sequence[str], datetime, int, float],
                                    tuple[np.ndarray, dict[str, Any]]]:
        """This matrix as the instance builder's `carbon` argument (`planner.build.CarbonSource`),
        so a daemon plans with exactly the matrix it compared. Asked for another grid, it raises.
        """
        def source(zones: Sequence[str], t0: datetime, n_slots: int,
                   slot_h: float) -> tuple[np.ndarray, dict[str, Any]]:
            if t0 != self.t0 or n_slots != self.n_slots or round(slot_h * 3600) != self.slot_s:
                raise ValueError(f"CIMatrix covers {self.n_slots} slots of {self.slot_h} h from "
                                 f"{self.t0.isoformat()}, not {n_slots} of {slot_h} h from "
                                 f"{t0.isoformat()}")
            return self.rows(zones), self.meta()
        return source

    def to_json_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (values to 0.01 g/kWh), e.g. for `Plan.details`."""
        return {"zones": list(self.zones), "t0": self.t0.isoformat(), "slot_h": self.slot_h,
                "ci_g_per_kwh": np.round(self.ci_g_per_kwh, 2).tolist(),
                "flags": self.flags.tolist(),
                "provenance": [p.to_dict() for p in self.provenance],
                "built_at": self.built_at.isoformat() if self.built_at else None}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> CIMatrix:
        n = len(d["zones"])
        return cls(zones=tuple(d["zones"]), t0=datetime.fromisoformat(d["t0"]),
                   slot_h=float(d["slot_h"]),
                   ci_g_per_kwh=np.array(d["ci_g_per_kwh"], dtype=float).reshape(n, -1),
                   flags=np.array(d["flags"], dtype=np.int8).reshape(n, -1),
                   provenance=tuple(ZoneProvenance.from_dict(p) for p in d["provenance"]),
                   built_at=datetime.fromisoformat(d["built_at"]) if d.get("built_at") else None)

    def meta(self) -> dict[str, Any]:
        """JSON-ready provenance for `Instance.meta['carbon']` and reports."""
        signals = sorted({p.signal for p in self.provenance})
        return {
            "t0": self.t0.isoformat(), "slot_h": self.slot_h, "n_slots": self.n_slots,
            "built_at": self.built_at.isoformat() if self.built_at else None,
            "signals": signals, "mixed_signals": len(signals) > 1,
            "estimate_share": float(np.mean(self.flags == Flag.ESTIMATE)) if self.flags.size
            else 0.0,
            "zones": {p.zone: p.to_dict() for p in self.provenance},
            "flag_names": {int(k): v for k, v in FLAG_NAMES.items()},
        }
