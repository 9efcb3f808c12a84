"""HTTP for the providers: timeouts, retries with backoff, and errors that carry no secret.

One `HttpClient` per provider instance keeps a `requests.Session`. A GET is retried (tenacity)
on timeouts, connection errors, 5xx and 429; a 429's Retry-After (seconds or HTTP date) is the
wait, and one longer than `max_retry_after_s` ends the retries at once (falling back beats
stalling a planning cycle). 401/403 become `ProviderAuthError`, other 4xx `ProviderRejected`,
exhausted retries `ProviderUnavailable`, a body that is not JSON `ProviderResponseError`.

Secrets travel only in headers or basic auth, never in URLs; messages and logs name the provider
and the path, and any text taken from a response passes `redact()` first. `sleep` is injectable
so tests check the waits without waiting.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from carbonplan import __version__
from carbonplan.signals.errors import (
    ProviderAuthError,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
)

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
MAX_MESSAGE_CHARS = 200


@dataclass(frozen=True)
class HttpSettings:
    timeout_s: float = 10.0
    attempts: int = 3
    backoff_s: float = 1.0
    max_retry_after_s: float = 60.0


class _Transient(Exception):
    """A failure worth another try; `retry_after` is the server's requested wait, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    """GET JSON from one provider's base URL with timeouts, retries and redacted errors."""

    def __init__(self, provider_label: str, base_url: str, settings: HttpSettings, *,
                 auth_field: str, secrets: Iterable[str] = (),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """
        Args:
            provider_label: names the provider in messages ("Electricity Maps").
            base_url: e.g. https://api.electricitymaps.com/v3 (tests: http://127.0.0.1:port).
            auth_field: the config key or variable an auth error points the user to.
            secrets: strings that must never appear in a message (keys, passwords, tokens).
            sleep: waits between tries (tests record instead of sleeping).
        """
        self.label = provider_label
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.auth_field = auth_field
        self._secrets = [s for s in secrets if s]
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"carbonplan/{__version__}"
        self.session.headers["Accept"] = "application/json"

    def add_secret(self, value: str) -> None:
        if value:
            self._secrets.append(value)

    def redact(self, text: str) -> str:
        """`text` with every known secret replaced, cut to a readable length."""
        for s in self._secrets:
            text = text.replace(s, "***")
        text = " ".join(text.split())
        return text[:MAX_MESSAGE_CHARS] + ("..." if len(text) > MAX_MESSAGE_CHARS else "")

    def close(self) -> None:
        self.session.close()

    # -- requests ------------------------------------------------------------------------------

    def get_json(self, path: str, *, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None, reject_field: str = "zone") -> Any:
        """GET base_url + path and decode the JSON body.

        `reject_field` is what a 4xx other than 401/403 blames (the zone, by default).

        Raises:
            ProviderAuthError: 401 or 403.
            ProviderRejected: another 4xx (bad zone, bad parameter).
            ProviderUnavailable: timeouts, connection errors, 5xx or 429 after all tries.
            ProviderResponseError: the body is not JSON.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._log_retry(path),
        )
        try:
            for attempt in retrying:
                with attempt:
                    resp = self._once(path, params, headers, auth, reject_field)
        except _Transient as exc:
            tries = self.settings.attempts
            raise ProviderUnavailable(f"{self.label} {path}: {exc.reason} "
                                      f"(gave up after {tries} tr{'y' if tries == 1 else 'ies'})"
                                      ) from None
        try:
            return resp.json()
        except ValueError:
            raise ProviderResponseError(f"{self.label} {path}: response is not valid JSON "
                                        f"(HTTP {resp.status_code}, "
                                        f"{len(resp.content)} bytes)") from None

    def _once(self, path: str, params: dict[str, Any] | None, headers: dict[str, str] | None,
              auth: tuple[str, str] | None, reject_field: str) -> requests.Response:
        t = self.settings.timeout_s
        try:
            resp = self.session.get(self.base_url + path, params=params, headers=headers,
                                    auth=auth, timeout=(t, t))
        except requests.Timeout:
            raise _Transient(f"no response within {t:g} s") from None
        except requests.ConnectionError:
            raise _Transient("cannot connect") from None
        except requests.RequestException as exc:
            raise _Transient(f"request failed ({type(exc).__name__})") from None
        code = resp.status_code
        if code == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if wait is not None and wait > self.settings.max_retry_after_s:
                raise ProviderUnavailable(f"{self.label} {path}: rate limited (HTTP 429), asked "
                                          f"to wait {wait:.0f} s, more than max_retry_after_s")
            raise _Transient("rate limited (HTTP 429)", retry_after=wait)
        if code >= 500:
            raise _Transient(f"HTTP {code}{self._detail(resp)}")
        if code in (401, 403):
            raise ProviderAuthError(self.auth_field, f"{self.label} refused the credentials "
                                    f"(HTTP {code} on {path}): missing, wrong, expired or not "
                                    f"entitled to this endpoint or zone{self._detail(resp)}")
        if code >= 400:
            raise ProviderRejected(reject_field, f"{self.label} rejected the request (HTTP "
                                                 f"{code} on {path}){self._detail(resp)}")
        return resp

    def _detail(self, resp: requests.Response) -> str:
        """': <the provider's message>' from an error body, redacted; '' if there is none."""
        try:
            body = resp.json()
        except ValueError:
            return ""
        msg: Any = body
        if isinstance(body, dict):
            msg = body.get("message") or body.get("error") or body.get("detail") or ""
            if isinstance(msg, dict):
                msg = msg.get("message") or msg.get("code") or ""
        return f": {self.redact(str(msg))}" if msg else ""

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return min(MAX_BACKOFF_S, self.settings.backoff_s * 2 ** (state.attempt_number - 1))

    def _log_retry(self, path: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = exc.reason if isinstance(exc, _Transient) else type(exc).__name__
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s %s: %s; try %d of %d in %.1f s", self.label, path, reason,
                        state.attempt_number + 1, self.settings.attempts, wait)
        return before_sleep
