"""What every carbon-intensity provider offers, and the helpers they share.

A provider turns (zone, start, end) into a validated `Series` at its native resolution; the
service resamples, blends, caches and falls back, so providers stay thin adapters of one API.
Providers are built from the `[carbon]` config table; they hold no state but an HTTP session
(and WattTime's token). Providers must not import the store or the planner: caching and
fallback are the service's job.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from carbonplan.signals.errors import ProviderAuthError, ProviderRejected
from carbonplan.signals.http import HttpClient, HttpSettings
from carbonplan.signals.series import Series

if TYPE_CHECKING:
    from pydantic import SecretStr

    from carbonplan.config import CarbonSection

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def http_settings(settings: CarbonSection) -> HttpSettings:
    return HttpSettings(timeout_s=settings.timeout_s, attempts=settings.attempts,
                        backoff_s=settings.backoff_s,
                        max_retry_after_s=settings.max_retry_after_s)


def read_secret(env_name: str, inline: SecretStr | None, *, what: str, config_key: str) -> str:
    """A key or password: from the environment variable `env_name`, else the inline value.

    Raises:
        ProviderAuthError: neither is set. The message names the variable, never a value.
    """
    value = os.environ.get(env_name, "").strip() if env_name else ""
    if not value and inline is not None:
        value = inline.get_secret_value().strip()
    if not value:
        raise ProviderAuthError(env_name or config_key,
                                f"is not set; {what}: export it, or name another variable in "
                                f"{config_key}_env (docs/signals.md)")
    return value


class Provider(ABC):
    """A source of carbon intensity for some zones."""

    name: ClassVar[str]
    cacheable: ClassVar[bool] = True  # network providers: every series goes to the store
    horizon_h: float = 0.0            # how far ahead its forecasts usually reach

    def __init__(self, settings: CarbonSection, *, clock: Clock = utc_now,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep

    @property
    @abstractmethod
    def source(self) -> str:
        """A label for people: 'Electricity Maps v3 (lifecycle)'."""

    @property
    @abstractmethod
    def signal(self) -> str:
        """average or marginal."""

    @property
    def cache_key(self) -> str:
        """The store's `provider` column: the name plus what changes the numbers."""
        return self.name

    @abstractmethod
    def check_zone(self, zone: str) -> None:
        """Raise ProviderRejected when this provider cannot serve `zone` as configured."""

    @abstractmethod
    def forecast(self, zone: str, start: datetime, end: datetime) -> Series:
        """The provider's newest forecast for `zone`, as far into [start, end) as it reaches."""

    @abstractmethod
    def history(self, zone: str, start: datetime, end: datetime) -> Series:
        """What the provider reports for [start, end) in the past."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections."""

    @property
    def max_bad_fraction(self) -> float:
        return self.settings.max_bad_fraction


class HttpProvider(Provider):
    """A provider behind an HTTP API, with one `HttpClient`."""

    label: ClassVar[str]

    def __init__(self, settings: CarbonSection, *, clock: Clock = utc_now,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings, clock=clock, sleep=sleep)
        self.http: HttpClient | None = None

    def client(self, base_url: str, auth_field: str, secrets: list[str]) -> HttpClient:
        return HttpClient(self.label, base_url, http_settings(self.settings),
                          auth_field=auth_field, secrets=secrets, sleep=self.sleep)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


def unserved(provider: str, zone: str, how: str) -> ProviderRejected:
    return ProviderRejected("zone", f"{provider} does not serve zone '{zone}' as configured; {how}")
