"""The one door to carbon signals: providers, cache, fallback and blending behind three calls.

    svc = SignalService(cfg.carbon, store)                          # or open_signals(cfg, store)
    svc.forecast(zone, start, end, slot_h=1.0)      -> Series       # validated, on the slot grid
    svc.history(zone, start, end, slot_h=1.0)       -> Series
    svc.build_ci_matrix(zones, t0, n_slots, slot_h) -> CIMatrix     # the planner's instance builder
    svc.carbon_source   # the same as planner.build.CarbonSource: build_instance(jobs, site, ...)

For a forecast, the provider's series is used fresh from the cache when it was fetched within
`cache_ttl`, else fetched (and cached with its issue time). When the provider fails (timeouts,
5xx, 429, a bad response) the last good cached forecast no older than `max_stale` stands in, and
with none the zone's typical profile does; the series says so in `origin` and `note`. Slots past
the provider's horizon (or in its gaps) blend into the typical profile and are flagged estimates.

A configuration problem (missing or refused key, zone the provider does not serve) is raised by
`forecast` and `history` so that `carbonplan forecast` can name it; `build_ci_matrix` never raises
for a provider: it fails open per zone and records why in the zone's provenance.
Must not import the planner (the planner's builder calls this, not the other way round).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from carbonplan.errors import InputError
from carbonplan.signals.blend import fill_gaps
from carbonplan.signals.cache import SeriesCache
from carbonplan.signals.errors import ProviderRejected, SignalError
from carbonplan.signals.matrix import CIMatrix, ZoneProvenance
from carbonplan.signals.providers.base import Clock, Provider, utc_now
from carbonplan.signals.registry import PROVIDERS
from carbonplan.signals.resample import resample
from carbonplan.signals.series import Flag, Series, floor_time
from carbonplan.signals.typical import check_zone, typical_slots

if TYPE_CHECKING:
    from carbonplan.config import CarbonSection, SiteConfig
    from carbonplan.store.repo import Store

log = logging.getLogger(__name__)
MODEL_SOURCE = "carbonplan offline model (estimate)"


def _slot_s(slot_h: float, field: str = "slot_h") -> int:
    if not (isinstance(slot_h, int | float) and math.isfinite(slot_h) and slot_h > 0):
        raise InputError(field, f"must be a positive number of hours, got {slot_h!r}")
    s = round(slot_h * 3600)
    if s < 60:
        raise InputError(field, "must be at least one minute")
    return s


def _aware(dt: datetime, field: str) -> datetime:
    if dt.tzinfo is None:
        raise InputError(field, "must be an aware datetime (UTC)")
    return dt


def _stamp(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%MZ") if dt else "?"


class SignalService:
    """Carbon intensity for zones and times, from the configured providers, with fallback."""

    def __init__(self, settings: CarbonSection, store: Store | None = None, *,
                 provider: str | None = None, provider_field: str = "--provider",
                 clock: Clock = utc_now, sleep: Callable[[float], None] = time.sleep) -> None:
        """
        Args:
            settings: the `[carbon]` config table.
            store: where series are cached; None keeps nothing (no fallback to old forecasts).
            provider: use this provider for every zone (overrides `provider` and
                `zone_providers` of the config); `provider_field` names it in errors.
            clock: the time now (tests move it).
            sleep: waits between retries (tests record them).
        """
        self.settings = settings
        self.store = store
        self.clock = clock
        self.sleep = sleep
        if provider is not None:
            PROVIDERS.get(provider, provider_field)
            self.default, self.zone_providers = provider, {}
        else:
            self.default, self.zone_providers = settings.provider, dict(settings.zone_providers)
        self._providers: dict[str, Provider] = {}
        self.last_matrix: CIMatrix | None = None
        self.ttl = timedelta(seconds=settings.seconds("cache_ttl"))
        self.max_stale = timedelta(seconds=settings.seconds("max_stale"))
        self.blend_h = settings.seconds("blend_time") / 3600.0

    def close(self) -> None:
        for p in self._providers.values():
            p.close()

    def __enter__(self) -> SignalService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- providers -----------------------------------------------------------------------------

    def provider_for(self, zone: str) -> Provider:
        name = self.zone_providers.get(zone, self.default)
        if name not in self._providers:
            cls = PROVIDERS.get(name, "carbon.provider")
            self._providers[name] = cls(self.settings, clock=self.clock, sleep=self.sleep)
        return self._providers[name]

    def _cache(self, p: Provider) -> SeriesCache | None:
        if self.store is None or not p.cacheable:
            return None
        return SeriesCache(self.store, provider=p.name, cache_key=p.cache_key, source=p.source)

    # -- public calls --------------------------------------------------------------------------

    def forecast(self, zone: str, start: datetime, end: datetime, *, slot_h: float = 1.0,
                 fail_open: bool = False) -> Series:
        """The forecast for [start, end) on a grid of `slot_h` hours (start floored to it).

        Returns:
            A Series with no gaps: provider values, then (or in gaps) the blended typical
            profile flagged ESTIMATE.

        Raises:
            InputError: unknown zone, bad times or slot length; unless `fail_open`, also
                ProviderRejected (missing or refused key, zone not served).
        """
        slot_s = _slot_s(slot_h)
        t0 = floor_time(_aware(start, "start"), slot_s)
        return self._forecast_grid(zone, t0, self._n_slots(t0, _aware(end, "end"), slot_s),
                                   slot_s, fail_open=fail_open)

    def history(self, zone: str, start: datetime, end: datetime, *, slot_h: float = 1.0,
                fail_open: bool = False) -> Series:
        """What happened in [start, end), on a grid of `slot_h` hours, from cache or provider.

        Raises:
            InputError: as `forecast`.
        """
        slot_s = _slot_s(slot_h)
        t0 = floor_time(_aware(start, "start"), slot_s)
        n = self._n_slots(t0, _aware(end, "end"), slot_s)
        check_zone(zone)
        end = t0 + timedelta(seconds=n * slot_s)
        p = self.provider_for(zone)
        note = ""
        try:
            p.check_zone(zone)
        except ProviderRejected as exc:
            if not fail_open:
                raise
            return self._model_only(zone, t0, n, slot_s, "history", p, str(exc))
        cache = self._cache(p)
        grid = None
        if cache is not None:
            for s in cache.history(zone, t0, end):
                grid = self._overlay(grid, resample(s, t0, n, slot_s))
        if grid is None or not np.all(np.isfinite(grid.values)):
            try:
                fresh = p.history(zone, t0, end)
            except (SignalError, ProviderRejected) as exc:
                if isinstance(exc, ProviderRejected) and not fail_open:
                    raise
                note = f"{exc}; " + ("using cached history" if grid is not None else
                                     "using the typical profile")
                log.warning("%s", note)
            else:
                if cache is not None:
                    cache.save(fresh)
                grid = self._overlay(grid, resample(fresh, t0, n, slot_s))
        if grid is None:
            return self._model_only(zone, t0, n, slot_s, "history", p, note)
        return self._fill(zone, grid, note)

    def build_ci_matrix(self, zones: Iterable[str], t0: datetime, n_slots: int,
                        slot_h: float) -> CIMatrix:
        """Carbon intensity for the planner: distinct zones x `n_slots` slots from `t0`.

        Never raises for a provider: a zone whose provider fails or is misconfigured gets the
        last good forecast or the typical profile, and its provenance says why.

        Args:
            zones: grid zone ids (duplicates are fine: e.g. the zone of every pool).
            t0: start of slot 0 (aware; used as given, not floored).
            n_slots: T >= 1.
            slot_h: slot length in hours.

        Returns:
            CIMatrix with ci_g_per_kwh float (Z, T) and flags int8 (Z, T).

        Raises:
            InputError: unknown zone, n_slots < 1, bad slot length or naive t0.
        """
        slot_s = _slot_s(slot_h)
        _aware(t0, "t0")
        if not isinstance(n_slots, int) or n_slots < 1:
            raise InputError("n_slots", f"must be a positive integer, got {n_slots!r}")
        distinct = list(dict.fromkeys(zones))
        for z in distinct:
            check_zone(z)
        rows = [self._forecast_grid(z, t0, n_slots, slot_s, fail_open=True) for z in distinct]
        ci = np.vstack([s.values for s in rows]) if rows else np.zeros((0, n_slots))
        flags = (np.vstack([s.flags for s in rows]) if rows
                 else np.zeros((0, n_slots), dtype=np.int8))
        return CIMatrix(zones=tuple(distinct), t0=t0, slot_h=slot_s / 3600.0, ci_g_per_kwh=ci,
                        flags=flags.astype(np.int8), built_at=self.clock(),
                        provenance=tuple(self._provenance(s) for s in rows))

    def carbon_source(self, zones: Sequence[str], t0: datetime, n_slots: int,
                      slot_h: float) -> tuple[np.ndarray, dict[str, Any]]:
        """`build_ci_matrix` in the shape of the instance builder's `carbon` argument
        (`planner.build.CarbonSource`): (float (Z, T) in the order of `zones`, provenance).

        Pass the bound method: `build_instance(jobs, site, svc.carbon_source)`. The matrix
        itself is kept in `last_matrix` (for change detection against the next one).
        """
        m = self.build_ci_matrix(zones, t0, n_slots, slot_h)
        self.last_matrix = m
        return m.rows(zones), m.meta()

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _n_slots(t0: datetime, end: datetime, slot_s: int) -> int:
        if end <= t0:
            raise InputError("end", "must be after start")
        return math.ceil((end - t0).total_seconds() / slot_s)

    def _forecast_grid(self, zone: str, t0: datetime, n: int, slot_s: int, *,
                       fail_open: bool) -> Series:
        check_zone(zone)
        p = self.provider_for(zone)
        end = t0 + timedelta(seconds=n * slot_s)
        try:
            p.check_zone(zone)
            raw, note = self._fetch_forecast(p, zone, t0, end)
        except ProviderRejected as exc:
            if not fail_open:
                raise
            log.warning("%s: %s", zone, exc)
            raw, note = self._last_good(p, zone, t0, f"{exc.field}: {exc.reason}")
        if raw is None:
            return self._model_only(zone, t0, n, slot_s, "forecast", p, note)
        return self._fill(zone, resample(raw, t0, n, slot_s).with_(note=note), note)

    def _fetch_forecast(self, p: Provider, zone: str, t0: datetime,
                        end: datetime) -> tuple[Series | None, str]:
        """The provider's forecast: cached if fresh, else fetched and cached, else the fallback.
        """
        cache = self._cache(p)
        now = self.clock()
        if cache is not None:
            hit = cache.latest_forecast(zone, origin="cached")
            if (hit is not None and hit.fetched_at is not None and now - hit.fetched_at < self.ttl
                    and hit.covered_until is not None and hit.covered_until > t0):
                return hit, ""
        try:
            fresh = p.forecast(zone, t0, end)
        except SignalError as exc:
            log.warning("%s: %s", zone, exc)
            return self._last_good(p, zone, t0, str(exc))
        if cache is not None:
            cache.save(fresh)
        return fresh, ""

    def _last_good(self, p: Provider, zone: str, t0: datetime,
                   why: str) -> tuple[Series | None, str]:
        cache = self._cache(p)
        old = cache.latest_forecast(zone, origin="stale") if cache is not None else None
        if (old is not None and self.clock() - old.issued_at <= self.max_stale
                and old.covered_until is not None and old.covered_until > t0):
            return old, f"{why}; using the forecast issued {_stamp(old.issued_at)}"
        return None, f"{why}; using the typical profile"

    def _model_only(self, zone: str, t0: datetime, n: int, slot_s: int, kind: str,
                    p: Provider, note: str) -> Series:
        return Series(zone=zone, provider=p.name, source=MODEL_SOURCE, signal="average",
                      kind=kind, start=t0, step_s=slot_s,
                      values=typical_slots(zone, t0, n, slot_s),
                      flags=np.full(n, Flag.ESTIMATE, dtype=np.int8), issued_at=t0,
                      fetched_at=self.clock(), origin="model", note=note)

    def _fill(self, zone: str, grid: Series, note: str) -> Series:
        typical = typical_slots(zone, grid.start, grid.n, grid.step_s)
        values, flags = fill_gaps(grid.values, grid.flags, typical, slot_h=grid.step_h,
                                  blend_h=self.blend_h)
        return grid.with_(values=values, flags=flags, note=note,
                          provider_until=grid.covered_until)

    @staticmethod
    def _overlay(base: Series | None, top: Series) -> Series:
        """`top` where it has values, `base` elsewhere (same grid)."""
        if base is None:
            return top
        have = np.isfinite(top.values)
        values = np.where(have, top.values, base.values)
        flags = np.where(have, top.flags, base.flags).astype(np.int8)
        return top.with_(values=values, flags=flags, dropped=base.dropped + top.dropped)

    @staticmethod
    def _provenance(s: Series) -> ZoneProvenance:
        counts = s.counts()
        return ZoneProvenance(
            zone=s.zone, provider=s.provider, source=s.source, signal=s.signal, origin=s.origin,
            issued_at=s.issued_at, fetched_at=s.fetched_at,
            covered_until=s.provider_until, n_measurement=counts["measurement"],
            n_forecast=counts["forecast"], n_estimate=counts["estimate"], dropped=s.dropped,
            note=s.note)


def open_signals(cfg: SiteConfig, store: Store | None = None, *, provider: str | None = None,
                 clock: Clock = utc_now) -> SignalService:
    """A `SignalService` for a loaded site config (the CLI and the daemon use this)."""
    return SignalService(cfg.carbon, store, provider=provider, clock=clock)


def build_ci_matrix(cfg: SiteConfig, store: Store | None, zones: Iterable[str], t0: datetime,
                    n_slots: int, slot_h: float) -> CIMatrix:
    """One-shot `SignalService.build_ci_matrix` (a long-lived caller keeps a service instead,
    to reuse HTTP connections and WattTime's token)."""
    with open_signals(cfg, store) as svc:
        return svc.build_ci_matrix(zones, t0, n_slots, slot_h)
