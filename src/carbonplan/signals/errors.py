"""Why a provider gave no usable series.

Two families, because callers treat them differently:
- `SignalError` (unavailable, bad response): transient or the provider's fault. The service falls
  back to the last good cached forecast, then to the zone's typical profile.
- `ProviderRejected` (an `InputError`): the request or the configuration is wrong (bad or missing
  key, zone the provider does not serve). `carbonplan forecast` reports it as a one-line error;
  the planner's matrix still falls back (fail open) and records why.
Messages name the provider and endpoint path, never a key, token or header.
"""

from __future__ import annotations

from carbonplan.errors import InputError


class SignalError(Exception):
    """A provider could not give a usable series (not the user's fault)."""


class ProviderUnavailable(SignalError):
    """Timeouts, connection failures, 5xx or 429 after the retries ran out."""


class ProviderResponseError(SignalError):
    """The response was not what the provider documents: not JSON, missing fields, mostly bad."""


class ProviderRejected(InputError):
    """The provider refused the request: fix the config, key or zone."""


class ProviderAuthError(ProviderRejected):
    """HTTP 401/403 or a missing key: the credentials are missing, wrong or not entitled."""
