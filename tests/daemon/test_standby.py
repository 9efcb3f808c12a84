"""Several daemons on one PostgreSQL: one plans and applies; a standby takes over within two
intervals when the leader dies (real processes, real PostgreSQL, SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

INTERVAL_S = 2.0


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except Exception as exc:  # 503 (stale) or not up yet
        body = getattr(exc, "read", lambda: b"")()
        return json.loads(body) if body else None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_standby_takes_over_when_the_leader_dies(pg_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "carbonplan.toml"
    cfg.write_text(f'[executor.local]\nrun_dir = "{tmp_path / "runs"}"\n')
    env = {**os.environ, "CARBONPLAN_DB": pg_url, "CARBONPLAN_CONFIG": str(cfg)}
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "carbonplan", "daemon", "--interval",
                               f"{INTERVAL_S}s", "--metrics-port", str(p), "--log-level",
                               "warning"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for p in ports]
    try:
        end = time.monotonic() + 60
        states: list = [None, None]
        while time.monotonic() < end:
            states = [health(p) for p in ports]
            if all(s and s["status"] == "ok" for s in states):
                break
            time.sleep(0.2)
        assert all(s and s["status"] == "ok" for s in states), states
        leaders = [s["leader"] for s in states]
        assert sorted(leaders) == [False, True], "exactly one daemon leads"
        lead = leaders.index(True)
        procs[lead].send_signal(signal.SIGKILL)
        procs[lead].wait()
        died = time.monotonic()
        standby = ports[1 - lead]
        while not (health(standby) or {}).get("leader"):
            assert time.monotonic() - died < 60, "the standby never took over"
            time.sleep(0.05)
        took = time.monotonic() - died
        # the standby tries the lease once per interval; the dead leader's session ends with it
        assert took <= 2 * INTERVAL_S + 1.0, f"took over after {took:.1f}s"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
