"""Electricity Maps API v3: consumption-based average carbon intensity, hourly.

Endpoints (docs/signals.md, notes on the API): /carbon-intensity/forecast (paid plans),
/carbon-intensity/latest, /carbon-intensity/history (last 24 h) and /carbon-intensity/past-range
(at most 10 days of hourly data per call). The key goes in the `auth-token` header only. Every
call names the zone and sets `shouldUseFallbackCallerLookup=false`, so a zone the API cannot
resolve is an error instead of silently the caller's own location.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from carbonplan.signals.errors import ProviderResponseError
from carbonplan.signals.providers.base import HttpProvider, read_secret, unserved
from carbonplan.signals.series import Flag, Series, floor_time
from carbonplan.signals.validate import RawPoint, build_series, parse_time, within

log = logging.getLogger(__name__)
HOUR_S = 3600
HISTORY_SPAN = timedelta(hours=24)      # /history covers the last 24 hours
PAST_RANGE_MAX = timedelta(days=10)     # /past-range: at most 10 days of hourly data per call
GRANULARITY_S = {"5_minutes": 300, "15_minutes": 900, "hourly": 3600}
KEY_URL = "https://portal.electricitymaps.com"


class ElectricityMaps(HttpProvider):
    name = "electricitymaps"
    label = "Electricity Maps"
    horizon_h = 72.0

    @property
    def cfg(self) -> Any:
        return self.settings.electricitymaps

    @property
    def source(self) -> str:
        return f"Electricity Maps v3 ({self.cfg.emission_factor_type})"

    @property
    def signal(self) -> str:
        return "average"

    @property
    def cache_key(self) -> str:
        return f"{self.name}:{self.cfg.emission_factor_type}"

    def _http(self) -> Any:
        if self.http is None:
            key = read_secret(self.cfg.api_key_env, self.cfg.api_key,
                              what=f"Electricity Maps needs an API key from {KEY_URL}",
                              config_key="carbon.electricitymaps.api_key")
            self.http = self.client(self.cfg.base_url, self.cfg.api_key_env or
                                    "carbon.electricitymaps.api_key", [key])
            self._headers = {"auth-token": key}
        return self.http

    def check_zone(self, zone: str) -> None:
        if not self.em_zone(zone):
            raise unserved(self.label, zone, "map it in carbon.electricitymaps.zones")
        self._http()  # a missing key is a configuration error: say so before any request

    def em_zone(self, zone: str) -> str:
        """The Electricity Maps zone key for a catalog zone (GB-NESO is the GB grid)."""
        mapped = self.cfg.zones.get(zone)
        if mapped:
            return mapped
        return "GB" if zone == "GB-NESO" else zone

    def _params(self, zone: str, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "zone": self.em_zone(zone),
            "emissionFactorType": self.cfg.emission_factor_type,
            "shouldUseFallbackCallerLookup": "false",
        }
        if self.cfg.disable_estimations:
            params["disableEstimations"] = "true"
        params.update(extra)
        return params

    def _get(self, path: str, zone: str, **params: Any) -> dict[str, Any]:
        http = self._http()
        body = http.get_json(path, params=self._params(zone, **params), headers=self._headers)
        if not isinstance(body, dict):
            raise ProviderResponseError(f"{self.label} {path}: expected a JSON object")
        got = body.get("zone")
        if isinstance(got, str) and got != self.em_zone(zone):
            raise ProviderResponseError(f"{self.label} {path}: asked for zone "
                                        f"{self.em_zone(zone)}, got {http.redact(got)}")
        return body

    @staticmethod
    def _items(body: dict[str, Any], key: str, path: str) -> list[Any]:
        items = body.get(key)
        if not isinstance(items, list):
            raise ProviderResponseError(f"Electricity Maps {path}: no '{key}' list in the "
                                        "response")
        return items

    @staticmethod
    def _step(body: dict[str, Any]) -> int:
        return GRANULARITY_S.get(str(body.get("temporalGranularity") or "hourly"), HOUR_S)

    @staticmethod
    def _past_point(item: Any) -> RawPoint:
        if not isinstance(item, dict):
            return RawPoint(None, None, Flag.MEASUREMENT)
        flag = Flag.ESTIMATE if item.get("isEstimated") else Flag.MEASUREMENT
        return RawPoint(item.get("datetime"), item.get("carbonIntensity"), flag)

    def forecast(self, zone: str, start: datetime, end: datetime) -> Series:
        path = "/carbon-intensity/forecast"
        extra = {"horizonHours": self.cfg.horizon_h} if self.cfg.horizon_h else {}
        fetched = self.clock()
        body = self._get(path, zone, **extra)
        points = [RawPoint(i.get("datetime"), i.get("carbonIntensity"), Flag.FORECAST)
                  if isinstance(i, dict) else RawPoint(None, None, Flag.FORECAST)
                  for i in self._items(body, "forecast", path)]
        first = min((t for p in points if (t := parse_time(p.time))), default=None)
        if first is not None and first > floor_time(max(start, fetched), HOUR_S):
            points = self._latest(zone) + points  # the current hour, when the forecast skips it
        return build_series(points, zone=zone, provider=self.name, source=self.source,
                            signal=self.signal, kind="forecast", step_s=self._step(body),
                            issued_at=parse_time(body.get("updatedAt")) or fetched,
                            fetched_at=fetched, max_bad_fraction=self.max_bad_fraction,
                            what=f"{self.label} {path}")

    def _latest(self, zone: str) -> list[RawPoint]:
        """The current hour from /latest; nothing if that call fails (the forecast still holds)."""
        from carbonplan.signals.errors import SignalError

        try:
            body = self._get("/carbon-intensity/latest", zone)
        except SignalError as exc:
            log.warning("%s", exc)
            return []
        return [self._past_point(body)]

    def history(self, zone: str, start: datetime, end: datetime) -> Series:
        fetched = self.clock()
        if start >= fetched - HISTORY_SPAN:
            path = "/carbon-intensity/history"
            items = [self._past_point(i)
                     for i in self._items(self._get(path, zone), "history", path)]
        else:
            path = "/carbon-intensity/past-range"
            items: list[RawPoint] = []
            a = floor_time(start, HOUR_S)
            while a < end:
                b = min(a + PAST_RANGE_MAX, end)
                body = self._get(path, zone, start=_iso(a), end=_iso(b))
                items += within([self._past_point(i) for i in self._items(body, "data", path)],
                                a, b)
                a = b
        return build_series(items, zone=zone, provider=self.name,
                            source=self.source, signal=self.signal, kind="history",
                            step_s=HOUR_S, issued_at=None, fetched_at=fetched,
                            max_bad_fraction=self.max_bad_fraction,
                            window=(floor_time(start, HOUR_S), end),
                            what=f"{self.label} {path}")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
