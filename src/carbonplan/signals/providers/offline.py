"""The built-in offline model as a provider: the default, with no key and no network.

Deterministic: values depend only on the zone and the time (signals/typical.py), and the issue
time is the start of the request. Every point is an `ESTIMATE`, and the source label says so
wherever it is shown. Not cached: computing it is cheaper than reading it back.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from carbonplan.signals.providers.base import Provider
from carbonplan.signals.series import Flag, Series, floor_time
from carbonplan.signals.typical import check_zone, typical_slots

STEP_S = 900  # fine enough for any slot of 15 minutes or more


class OfflineModel(Provider):
    name = "offline"
    cacheable = False
    horizon_h = float("inf")

    @property
    def source(self) -> str:
        return "carbonplan offline model (estimate)"

    @property
    def signal(self) -> str:
        return "average"

    def check_zone(self, zone: str) -> None:
        check_zone(zone)

    def _series(self, zone: str, start: datetime, end: datetime, kind: str) -> Series:
        t0 = floor_time(start, STEP_S)
        n = max(1, math.ceil((end - t0).total_seconds() / STEP_S))
        return Series(zone=zone, provider=self.name, source=self.source, signal=self.signal,
                      kind=kind, start=t0, step_s=STEP_S,
                      values=typical_slots(zone, t0, n, STEP_S),
                      flags=np.full(n, Flag.ESTIMATE, dtype=np.int8), issued_at=t0,
                      fetched_at=self.clock(), origin="model")

    def forecast(self, zone: str, start: datetime, end: datetime) -> Series:
        return self._series(zone, start, end, "forecast")

    def history(self, zone: str, start: datetime, end: datetime) -> Series:
        return self._series(zone, start, end, "history")
