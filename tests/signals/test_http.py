"""The HTTP client against a real local server: retries, Retry-After, timeouts, error mapping."""

import logging

import pytest

from carbonplan.signals.errors import (
    ProviderAuthError,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
)
from carbonplan.signals.http import HttpClient, HttpSettings, parse_retry_after

from .conftest import Reply

SECRET = "tok-SECRET-123"


def client(api, sleeps, **kw) -> HttpClient:
    settings = HttpSettings(**{"timeout_s": 2.0, "attempts": 3, "backoff_s": 0.5, **kw})
    return HttpClient("Test API", api.url, settings, auth_field="TEST_KEY", secrets=[SECRET],
                      sleep=sleeps.append)


def test_ok_json(api, sleeps) -> None:
    api.on("/x", {"a": 1})
    assert client(api, sleeps).get_json("/x", params={"zone": "DE"}) == {"a": 1}
    assert api.hits("/x")[0].query == {"zone": "DE"} and sleeps == []


def test_429_honours_retry_after_then_succeeds(api, sleeps) -> None:
    api.on("/x", Reply(429, {"message": "slow down"}, {"Retry-After": "7"}), {"ok": True})
    assert client(api, sleeps).get_json("/x") == {"ok": True}
    assert sleeps == [7.0] and len(api.hits("/x")) == 2


def test_a_retry_after_beyond_the_cap_gives_up_at_once(api, sleeps) -> None:
    api.on("/x", Reply(429, {}, {"Retry-After": "3600"}), {"ok": True})
    with pytest.raises(ProviderUnavailable, match="asked to wait 3600 s"):
        client(api, sleeps, max_retry_after_s=60).get_json("/x")
    assert sleeps == [] and len(api.hits("/x")) == 1


def test_5xx_backs_off_exponentially_then_succeeds(api, sleeps, caplog) -> None:
    api.on("/x", Reply(503), Reply(500, "<html>oops</html>"), {"ok": 1})
    with caplog.at_level(logging.WARNING):
        assert client(api, sleeps).get_json("/x") == {"ok": 1}
    assert sleeps == [0.5, 1.0] and "HTTP 503" in caplog.text


def test_5xx_every_time_is_unavailable(api, sleeps) -> None:
    api.on("/x", Reply(502))
    with pytest.raises(ProviderUnavailable, match="HTTP 502.*gave up after 3 tries"):
        client(api, sleeps).get_json("/x")
    assert len(api.hits("/x")) == 3


def test_a_slow_server_times_out_and_is_retried(api, sleeps) -> None:
    api.on("/slow", Reply(200, {"late": True}, delay_s=1.0))
    with pytest.raises(ProviderUnavailable, match="no response within 0.2 s"):
        client(api, sleeps, timeout_s=0.2, attempts=2).get_json("/slow")
    assert len(api.hits("/slow")) == 2


def test_nobody_listening_is_unavailable(sleeps) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = HttpClient("Test API", f"http://127.0.0.1:{port}", HttpSettings(attempts=2),
                   auth_field="K", sleep=sleeps.append)
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        c.get_json("/x")


@pytest.mark.parametrize("code", [401, 403])
def test_auth_errors_name_the_key_variable_never_its_value(api, sleeps, code) -> None:
    api.on("/x", Reply(code, {"message": f"invalid token {SECRET}"}))
    with pytest.raises(ProviderAuthError) as e:
        client(api, sleeps).get_json("/x")
    assert e.value.field == "TEST_KEY" and f"HTTP {code}" in e.value.reason
    assert SECRET not in str(e.value) and "***" in e.value.reason
    assert len(api.hits("/x")) == 1  # not retried


def test_404_is_rejected_with_the_providers_message(api, sleeps) -> None:
    api.on("/x", Reply(404, {"error": {"code": "404", "message": "Zone XX not found"}}))
    with pytest.raises(ProviderRejected) as e:
        client(api, sleeps).get_json("/x")
    assert e.value.field == "zone" and "Zone XX not found" in e.value.reason


def test_malformed_json_is_a_response_error(api, sleeps) -> None:
    api.on("/x", Reply(200, '{"forecast": [1, 2,'))
    with pytest.raises(ProviderResponseError, match="not valid JSON"):
        client(api, sleeps).get_json("/x")


def test_retry_after_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
