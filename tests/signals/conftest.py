"""Fixtures for the signals tests: a real HTTP server on 127.0.0.1, a movable clock, settings.

`FakeApi` is a `ThreadingHTTPServer` in a thread. A test scripts it per path with replies
(status, JSON or raw body, headers, a delay) that are served in order, the last one repeating,
and reads back every request it received (path, query, headers). Providers reach it through
their configurable base URL, so the code under test does real HTTP: no request function is
patched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

NOW = datetime(2026, 11, 23, 12, 10, tzinfo=UTC)


@dataclass
class Reply:
    status: int = 200
    body: Any = None          # dict/list -> JSON; str/bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0      # wait before answering (slow server)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeApi:
    """Scripted replies per path; records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with api._lock:
                    api.seen.append(Seen(url.path, query, dict(self.headers.items())))
                    queue = api.routes.get(url.path)
                    reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply(
                        404, {"error": "not found"})
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body
                if isinstance(body, dict | list):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else (body or b"")
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, path: str, *replies: Reply | dict | list) -> None:
        """Serve these replies to GET `path`, in order; the last one repeats."""
        self.routes[path] = [r if isinstance(r, Reply) else Reply(body=r) for r in replies]

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    """Waits the retry logic asked for (recorded, not slept)."""
    return []


def carbon(**over: Any):
    """A validated `[carbon]` table with fast network settings for tests."""
    from carbonplan.config import parse_config

    base: dict[str, Any] = {"timeout_s": 2.0, "attempts": 3, "backoff_s": 0.5}
    return parse_config({"carbon": {**base, **over}}).carbon


@pytest.fixture
def em_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "em-SECRET-key-0123456789abcdef"
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", key)
    return key


@pytest.fixture
def wt_login(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    user, password = "carbon-user", "wt-SECRET-password-42"
    monkeypatch.setenv("WATTTIME_USERNAME", user)
    monkeypatch.setenv("WATTTIME_PASSWORD", password)
    return user, password


def hours(start: datetime, n: int, step_h: float = 1.0) -> list[datetime]:
    return [start + timedelta(hours=step_h * i) for i in range(n)]


def em_time(dt: datetime) -> str:
    """Electricity Maps' time format: 2026-11-23T12:00:00.000Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def em_forecast(zone: str, start: datetime, values: list[Any], updated: datetime = NOW) -> dict:
    return {"zone": zone,
            "forecast": [{"carbonIntensity": v, "datetime": em_time(t)}
                         for t, v in zip(hours(start, len(values)), values, strict=True)],
            "updatedAt": em_time(updated)}


def em_item(zone: str, t: datetime, v: Any, estimated: bool = False) -> dict:
    return {"zone": zone, "carbonIntensity": v, "datetime": em_time(t),
            "updatedAt": em_time(t + timedelta(hours=1)), "createdAt": em_time(t),
            "emissionFactorType": "lifecycle", "isEstimated": estimated,
            "estimationMethod": "TIME_SLICER_AVERAGE" if estimated else None}
