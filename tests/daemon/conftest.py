"""Fixtures for daemon tests: a two-zone site, real local processes, a scripted carbon source.

The carbon source produces real `CIMatrix` objects from a function of (zone, time), so a test can
move the forecast between cycles; the signals service itself is tested against real HTTP servers
in tests/signals.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from carbonplan.config import parse_config
from carbonplan.daemon import Daemon, DaemonSettings
from carbonplan.domain import ACTIVE_STATES, JobSpec
from carbonplan.executors.local import LocalExecutor
from carbonplan.leadership import lease_for
from carbonplan.signals.matrix import CIMatrix, ZoneProvenance
from carbonplan.store import open_store

SLOT_S = 2.0
SLOT_H = SLOT_S / 3600


class ScriptedSignals:
    """Carbon intensity from `fn(zone, time)`; change `fn` to change the forecast."""

    def __init__(self, fn: Callable[[str, datetime], float]) -> None:
        self.fn = fn
        self.last_matrix: CIMatrix | None = None
        self.matrices = 0

    def build_ci_matrix(self, zones, t0: datetime, n_slots: int, slot_h: float) -> CIMatrix:
        zones = tuple(dict.fromkeys(zones))
        step = timedelta(hours=slot_h)
        ci = np.array([[self.fn(z, t0 + k * step) for k in range(n_slots)] for z in zones])
        prov = tuple(ZoneProvenance(zone=z, provider="scripted", source="test weather",
                                    signal="average", origin="live", issued_at=t0,
                                    fetched_at=t0, covered_until=t0 + n_slots * step,
                                    n_measurement=0, n_forecast=n_slots, n_estimate=0,
                                    dropped=0, note="") for z in zones)
        self.matrices += 1
        return CIMatrix(zones=zones, t0=t0, slot_h=slot_h, ci_g_per_kwh=ci,
                        flags=np.ones(ci.shape, dtype=np.int8), provenance=prov,
                        built_at=datetime.now(UTC))

    def carbon_source(self, zones, t0, n_slots, slot_h):
        m = self.build_ci_matrix(zones, t0, n_slots, slot_h)
        self.last_matrix = m
        return m.rows(zones), m.meta()

    def history(self, zone, start, end, *, slot_h=1.0, fail_open=False):
        raise LookupError("scripted signals keep no history")


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
