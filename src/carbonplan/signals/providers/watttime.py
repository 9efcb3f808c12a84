"""WattTime API v3: marginal operating emissions rate (MOER), 5-minute points, lbs/MWh.

Login is `GET /login` with HTTP basic auth, answered with a bearer token valid 30 minutes; the
token is renewed `RENEW_BEFORE` ahead of that, and a 401/403 on a data call triggers one fresh
login and one retry (the token may have been revoked early). Values are converted to gCO2e/kWh
by `energy.formulas.lbs_per_mwh_to_g_per_kwh` before validation. The token lives only in memory.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from carbonplan.energy.formulas import lbs_per_mwh_to_g_per_kwh
from carbonplan.signals.errors import ProviderAuthError, ProviderResponseError
from carbonplan.signals.providers.base import HttpProvider, read_secret, unserved
from carbonplan.signals.series import Flag, Series, floor_time
from carbonplan.signals.validate import RawPoint, build_series, parse_time, within

log = logging.getLogger(__name__)
TOKEN_LIFETIME = timedelta(minutes=30)
RENEW_BEFORE = timedelta(minutes=5)
HISTORY_CHUNK = timedelta(days=30)
POINT_S = 300
UNITS = "lbs_co2_per_mwh"
SIGNUP_URL = "https://docs.watttime.org"


def _convert(value: Any) -> Any:
    """lbs/MWh -> g/kWh for numbers; anything else is left for validation to reject."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return lbs_per_mwh_to_g_per_kwh(float(value))
    return value


class WattTime(HttpProvider):
    name = "watttime"
    label = "WattTime"
    horizon_h = 72.0

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._token: str | None = None
        self._token_at: datetime | None = None
        self.logins = 0  # how many times we logged in (for tests and metrics)

    @property
    def cfg(self) -> Any:
        return self.settings.watttime

    @property
    def source(self) -> str:
        return f"WattTime v3 ({self.cfg.signal_type})"

    @property
    def signal(self) -> str:
        return "marginal" if self.cfg.signal_type == "co2_moer" else "average"

    @property
    def cache_key(self) -> str:
        return f"{self.name}:{self.cfg.signal_type}"

    def region(self, zone: str) -> str:
        region = self.cfg.regions.get(zone)
        if not region:
            raise unserved(self.label, zone, "add it to carbon.watttime.regions, e.g. "
                                             f"regions = {{\"{zone}\" = \"CAISO_NORTH\"}}")
        return region

    def _credentials(self) -> tuple[str, str]:
        user = (self.cfg.username or "").strip() or read_secret(
            self.cfg.username_env, None, config_key="carbon.watttime.username",
            what=f"WattTime needs a username (register: {SIGNUP_URL})")
        password = read_secret(self.cfg.password_env, self.cfg.password,
                               what=f"WattTime needs the account's password ({SIGNUP_URL})",
                               config_key="carbon.watttime.password")
        return user, password

    def check_zone(self, zone: str) -> None:
        self.region(zone)
        self._client()

    def _client(self) -> Any:
        if self.http is None:
            user, password = self._credentials()
            self._auth = (user, password)
            self.http = self.client(self.cfg.base_url, self.cfg.password_env or
                                    "carbon.watttime.password", [password])
        return self.http

    # -- token ---------------------------------------------------------------------------------

    def _login(self) -> str:
        http = self._client()
        body = http.get_json("/login", auth=self._auth, reject_field="carbon.watttime.username")
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderResponseError("WattTime /login: no token in the response")
        http.add_secret(token)
        self._token, self._token_at = token, self.clock()
        self.logins += 1
        return token

    def _bearer(self) -> str:
        now = self.clock()
        if (self._token is None or self._token_at is None
                or now - self._token_at >= TOKEN_LIFETIME - RENEW_BEFORE):
            return self._login()
        return self._token

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET with the bearer token; on 401/403 log in again once and retry once."""
        http = self._client()
        try:
            body = http.get_json(path, params=params,
                                 headers={"Authorization": f"Bearer {self._bearer()}"})
        except ProviderAuthError:
            log.info("WattTime %s: token refused; logging in again", path)
            self._token = None
            body = http.get_json(path, params=params,
                                 headers={"Authorization": f"Bearer {self._login()}"})
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ProviderResponseError(f"WattTime {path}: no 'data' list in the response")
        return body

    # -- data ----------------------------------------------------------------------------------

    def _points(self, body: dict[str, Any], path: str, flag: Flag) -> tuple[list[RawPoint], int]:
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        units = meta.get("units")
        if units is not None and units != UNITS:
            raise ProviderResponseError(f"WattTime {path}: units '{units}', expected {UNITS}")
        for w in meta.get("warnings") or []:
            log.warning("WattTime %s: %s", path, self._client().redact(str(w)))
        step = meta.get("data_point_period_seconds")
        step = int(step) if isinstance(step, int | float) and step > 0 else POINT_S
        points = [RawPoint(i.get("point_time"), _convert(i.get("value")), flag)
                  if isinstance(i, dict) else RawPoint(None, None, flag) for i in body["data"]]
        return points, step

    def forecast(self, zone: str, start: datetime, end: datetime) -> Series:
        path = "/v3/forecast"
        fetched = self.clock()
        need_h = math.ceil((end - max(start, fetched)).total_seconds() / 3600)
        horizon = max(0, min(self.cfg.horizon_h or 72, need_h))
        body = self._get(path, {"region": self.region(zone), "signal_type": self.cfg.signal_type,
                                "horizon_hours": horizon})
        points, step = self._points(body, path, Flag.FORECAST)
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        return build_series(points, zone=zone, provider=self.name, source=self.source,
                            signal=self.signal, kind="forecast", step_s=step,
                            issued_at=parse_time(meta.get("generated_at")) or fetched,
                            fetched_at=fetched, max_bad_fraction=self.max_bad_fraction,
                            what=f"WattTime {path}")

    def history(self, zone: str, start: datetime, end: datetime) -> Series:
        path = "/v3/historical"
        fetched = self.clock()
        points: list[RawPoint] = []
        step = POINT_S
        a = floor_time(start, POINT_S)
        while a < end:
            b = min(a + HISTORY_CHUNK, end)
            body = self._get(path, {"region": self.region(zone),
                                    "signal_type": self.cfg.signal_type,
                                    "start": _iso(a), "end": _iso(b)})
            got, step = self._points(body, path, Flag.MEASUREMENT)
            points += within(got, a, b)  # `end` is inclusive: chunks must not share a point
            a = b
        return build_series(points, zone=zone, provider=self.name, source=self.source,
                            signal=self.signal, kind="history", step_s=step, issued_at=None,
                            fetched_at=fetched, max_bad_fraction=self.max_bad_fraction,
                            window=(floor_time(start, step), end), what=f"WattTime {path}")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
