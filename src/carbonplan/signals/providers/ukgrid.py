"""UK NESO Carbon Intensity API: Great Britain, national or one DNO region, half-hour periods.

No key. Forecasts reach about 48 h (`/fw48h`); history comes in calls of at most 14 days.
National periods carry `actual` once measured (a measurement) and `forecast` before (a forecast);
regional periods carry only a modelled `forecast`, so regional history is flagged an estimate.
The API publishes no issue time: a forecast's issue time is its fetch time, floored to the
half-hour. Serves the zones GB and GB-NESO.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from carbonplan.signals.errors import ProviderResponseError
from carbonplan.signals.providers.base import HttpProvider, unserved
from carbonplan.signals.series import Flag, Series, floor_time
from carbonplan.signals.validate import RawPoint, build_series, within

PERIOD_S = 1800
HISTORY_CHUNK = timedelta(days=14)
ZONES = ("GB", "GB-NESO")


class UkGrid(HttpProvider):
    name = "ukgrid"
    label = "NESO Carbon Intensity API"
    horizon_h = 48.0

    @property
    def cfg(self) -> Any:
        return self.settings.ukgrid

    @property
    def source(self) -> str:
        rid = self.cfg.region_id
        return f"NESO Carbon Intensity ({'region ' + str(rid) if rid else 'national'})"

    @property
    def signal(self) -> str:
        return "average"

    @property
    def cache_key(self) -> str:
        rid = self.cfg.region_id
        return f"{self.name}:{'region-' + str(rid) if rid else 'national'}"

    def check_zone(self, zone: str) -> None:
        if zone not in ZONES:
            raise unserved(self.label, zone, "it serves " + " and ".join(ZONES))

    def _get(self, path: str) -> list[Any]:
        if self.http is None:
            self.http = self.client(self.cfg.base_url, "carbon.ukgrid.base_url", [])
        body = self.http.get_json(path, reject_field="carbon.ukgrid")
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            msg = body["error"].get("message") or body["error"].get("code") or "error"
            raise ProviderResponseError(f"{self.label} {path}: {self.http.redact(str(msg))}")
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict):  # some regional answers hold one object, not a list
            data = [data]
        if not isinstance(data, list):
            raise ProviderResponseError(f"{self.label} {path}: no 'data' list in the response")
        if self.cfg.region_id:  # [{regionid, ..., data: [periods]}]
            periods: list[Any] = []
            for region in data:
                if isinstance(region, dict) and isinstance(region.get("data"), list):
                    periods += region["data"]
            return periods
        return data

    def _point(self, period: Any, past: bool) -> RawPoint:
        if not isinstance(period, dict) or not isinstance(period.get("intensity"), dict):
            return RawPoint(None, None, Flag.FORECAST)
        intensity = period["intensity"]
        actual = intensity.get("actual")
        if actual is not None:
            return RawPoint(period.get("from"), actual, Flag.MEASUREMENT)
        return RawPoint(period.get("from"), intensity.get("forecast"),
                        Flag.ESTIMATE if past else Flag.FORECAST)

    def _path(self, frm: datetime, tail: str) -> str:
        base = "/regional/intensity" if self.cfg.region_id else "/intensity"
        path = f"{base}/{_iso(frm)}/{tail}"
        return path + (f"/regionid/{self.cfg.region_id}" if self.cfg.region_id else "")

    def forecast(self, zone: str, start: datetime, end: datetime) -> Series:
        self.check_zone(zone)
        fetched = self.clock()
        frm = floor_time(start, PERIOD_S)
        path = self._path(frm, "fw48h")
        points = [self._point(p, past=False) for p in self._get(path)]
        return build_series(points, zone=zone, provider=self.name, source=self.source,
                            signal=self.signal, kind="forecast", step_s=PERIOD_S,
                            issued_at=floor_time(fetched, PERIOD_S), fetched_at=fetched,
                            max_bad_fraction=self.max_bad_fraction,
                            what=f"{self.label} {path}")

    def history(self, zone: str, start: datetime, end: datetime) -> Series:
        self.check_zone(zone)
        fetched = self.clock()
        points: list[RawPoint] = []
        a = floor_time(start, PERIOD_S)
        while a < end:
            b = min(a + HISTORY_CHUNK, end)
            points += within([self._point(p, past=True) for p in self._get(self._path(a, _iso(b)))],
                             a, b)
            a = b
        return build_series(points, zone=zone, provider=self.name, source=self.source,
                            signal=self.signal, kind="history", step_s=PERIOD_S, issued_at=None,
                            fetched_at=fetched, max_bad_fraction=self.max_bad_fraction,
                            window=(floor_time(start, PERIOD_S), end),
                            what=f"{self.label} history")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%MZ")
