"""Fixtures for daemon tests: a two-zone site, real local processes, a scripted carbon source.

The carbon source (`FunctionSignals`) builds real `CIMatrix` objects from a function of (zone,
time), so a test can move the forecast between cycles; the signals service itself is tested
against real HTTP servers in tests/signals.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonplan.config import parse_config
from carbonplan.daemon import Daemon, DaemonSettings
from carbonplan.domain import ACTIVE_STATES, JobSpec
from carbonplan.executors.local import LocalExecutor
from carbonplan.leadership import lease_for
from carbonplan.signals.scripted import FunctionSignals
from carbonplan.store import open_store

SLOT_S = 2.0
SLOT_H = SLOT_S / 3600


# the daemon's test weather: carbon intensity from a function of (zone, time)
ScriptedSignals = FunctionSignals


SITE_CONFIG = {
    "site": {"home_region": "dirty", "carbon_price_usd_per_t": 1000},
    "regions": [{"name": "dirty", "zone": "PL", "pue": 1.2, "energy_price_usd_per_kwh": 0.1},
                {"name": "clean", "zone": "SE", "pue": 1.2, "energy_price_usd_per_kwh": 0.1}],
    "pools": [{"region": "dirty", "accelerator": "a100-80gb", "market": "owned", "capacity": 2},
              {"region": "clean", "accelerator": "a100-80gb", "market": "owned",
               "capacity": 2}],
}


@pytest.fixture
def site():
    return parse_config(SITE_CONFIG).to_site()


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(str(tmp_path / "d.db"))
    yield s
    s.close()


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "runs")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "ran.txt"


def settings(**kw) -> DaemonSettings:
    base = dict(interval_s=0.3, freeze_window_s=1.0, slot_h=SLOT_H, horizon_h=0.05,
                time_limit_s=5.0, start_grace_s=6.0, avoid_failed_pool_s=30.0,
                move_penalty_usd=1e-7)  # a stability penalty at the scale of 4-second jobs
    return DaemonSettings(**{**base, **kw})


def make_daemon(store, site, executor, signals, **kw) -> Daemon:
    return Daemon(store, site, executor, signals, settings=settings(**kw),
                  lease=lease_for(store.engine))


def recording_job(marker: Path, name: str, *, slots: int = 2, deadline_s: float = 60,
                  **kw) -> JobSpec:
    """A job that appends '<job id> <pool> <unix time>' to `marker` and runs `slots` slots."""
    code = (f"import os, time; open({str(marker)!r}, 'a').write("
            "os.environ['CARBONPLAN_JOB_ID'] + ' ' + os.environ['CARBONPLAN_POOL'] + ' ' + "
            "str(time.time()) + '\\n')")
    return JobSpec(name=name, user="u", project="p", command=[sys.executable, "-c", code],
                   hours=slots * SLOT_H * 0.999, deadline=datetime.now(UTC) + timedelta(
                       seconds=deadline_s), **kw)


def runs(marker: Path) -> list[tuple[int, str, float]]:
    if not marker.exists():
        return []
    out = []
    for line in marker.read_text().splitlines():
        jid, pool, at = line.split()
        out.append((int(jid), pool, float(at)))
    return out


def cycle_until(daemon: Daemon, done: Callable[[], bool], timeout: float = 60.0,
                pause: float = 0.2) -> list:
    reports = []
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, "daemon did not get there in time"
        reports.append(daemon.run_once())
        time.sleep(pause)
    return reports


def all_finished(store) -> Callable[[], bool]:
    return lambda: not store.list_jobs(states=ACTIVE_STATES)
