"""Carbon intensity from a function of (zone, time): for what-if simulations (a recorded trace
served as a perfect forecast) and for tests of the daemon with real schedulers, where the
"weather" must change within seconds. It has the planner-facing surface of `SignalService`:
`build_ci_matrix`, `carbon_source` (with `last_matrix`) and `history`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from carbonplan.signals.matrix import CIMatrix, ZoneProvenance
from carbonplan.signals.series import Flag, Series


class FunctionSignals:
    """Serve `fn(zone, slot start) -> gCO2e/kWh`; assign `fn` to change the forecast."""

    def __init__(self, fn: Callable[[str, datetime], float], *, source: str = "function",
                 signal: str = "average") -> None:
        self.fn = fn
        self.source = source
        self.signal = signal
        self.last_matrix: CIMatrix | None = None

    def _values(self, zone: str, t0: datetime, n: int, step: timedelta) -> np.ndarray:
        return np.array([float(self.fn(zone, t0 + k * step)) for k in range(n)])

    def build_ci_matrix(self, zones: Iterable[str], t0: datetime, n_slots: int,
                        slot_h: float) -> CIMatrix:
        distinct = tuple(dict.fromkeys(zones))
        step = timedelta(hours=slot_h)
        ci = np.array([self._values(z, t0, n_slots, step) for z in distinct])
        prov = tuple(ZoneProvenance(zone=z, provider="function", source=self.source,
                                    signal=self.signal, origin="live", issued_at=t0,
                                    fetched_at=t0, covered_until=t0 + n_slots * step,
                                    n_measurement=0, n_forecast=n_slots, n_estimate=0,
                                    dropped=0, note="") for z in distinct)
        return CIMatrix(zones=distinct, t0=t0, slot_h=slot_h, ci_g_per_kwh=ci,
                        flags=np.full(ci.shape, Flag.FORECAST, dtype=np.int8), provenance=prov,
                        built_at=datetime.now(UTC))

    def carbon_source(self, zones: Sequence[str], t0: datetime, n_slots: int,
                      slot_h: float) -> tuple[np.ndarray, dict[str, Any]]:
        m = self.build_ci_matrix(zones, t0, n_slots, slot_h)
        self.last_matrix = m
        return m.rows(zones), m.meta()

    def history(self, zone: str, start: datetime, end: datetime, *, slot_h: float = 1.0,
                fail_open: bool = False) -> Series:
        step = timedelta(hours=slot_h)
        n = max(1, int(np.ceil((end - start) / step)))
        values = self._values(zone, start, n, step)
        return Series(zone=zone, provider="function", source=self.source, signal=self.signal,
                      kind="history", start=start, step_s=round(slot_h * 3600), values=values,
                      flags=np.full(n, Flag.MEASUREMENT, dtype=np.int8), issued_at=end)
