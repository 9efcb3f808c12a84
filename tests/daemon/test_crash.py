"""Crash safety: SIGKILL the daemon at many points of its cycle (at random moments and at exact
points: after refresh, after planning, between an executor call and its record, after applying)
over a scripted workload, restart it each time, and check after every death that no job is lost,
none runs twice, and none misses a deadline that was safe."""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonplan.domain import ACTIVE_STATES, JobSpec, JobState
from carbonplan.store import open_store
from crash_drill import kill_repeatedly, run_until

CONFIG = """
[site]
home_region = "dirty"
carbon_price_usd_per_t = 1000

[planner]
slot = "2s"
horizon = "10m"
time_limit_s = 3
freeze_window = "1s"

[executor]
kind = "local"

[executor.local]
run_dir = "{run_dir}"

[[regions]]
name = "dirty"
zone = "PL"

[[regions]]
name = "sunny"
zone = "US-CAL-CISO"

[[pools]]
region = "dirty"
accelerator = "a100-80gb"
market = "owned"
capacity = 4

[[pools]]
region = "sunny"
accelerator = "a100-80gb"
market = "owned"
capacity = 4
"""


def workload(marker: Path, n: int) -> list[JobSpec]:
    now = datetime.now(UTC)
    code = (f"import os, time; open({str(marker)!r}, 'a').write(os.environ['CARBONPLAN_JOB_ID']"
            " + '\\n'); time.sleep(1)")
    rng = random.Random(5)
    return [JobSpec(name=f"w{i}", user="u", project="p", command=[sys.executable, "-c", code],
                    hours=rng.choice([2, 4, 6]) / 3600, gpus=rng.choice([1, 2]),
                    not_before=now + timedelta(seconds=5 * i),
                    deadline=now + timedelta(seconds=5 * i + 240)) for i in range(n)]


def ran(marker: Path) -> list[int]:
    return [int(x) for x in marker.read_text().split()] if marker.exists() else []


def check(store, marker: Path, n_jobs: int) -> None:
    jobs = store.list_jobs(states=None)
    assert len(jobs) == n_jobs, "a job was lost or duplicated in the store"
    runs = ran(marker)
    assert len(runs) == len(set(runs)), f"a job ran twice: {sorted(runs)}"
    bad = [(j.id, j.state.value) for j in jobs if j.state not in ACTIVE_STATES
           and j.state != JobState.SUCCEEDED]
    assert not bad, f"jobs ended badly: {bad}"
    for j in jobs:
        if j.state == JobState.SUCCEEDED:
            assert j.ended_at <= j.deadline, f"job {j.id} finished after its deadline"


@pytest.mark.slow
def test_sigkill_at_many_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "carbonplan.toml"
    cfg.write_text(CONFIG.format(run_dir=tmp_path / "runs"))
    db = tmp_path / "crash.db"
    marker = tmp_path / "ran.txt"
    store = open_store(str(db))
    n_jobs = 16
    store.add_jobs(workload(marker, n_jobs))
    env = {**os.environ, "CARBONPLAN_DB": str(db), "CARBONPLAN_CONFIG": str(cfg)}
    argv = [sys.executable, "-m", "carbonplan", "daemon", "--interval", "0.3s",
            "--log-level", "warning"]
    at_points = kill_repeatedly(argv, env, lambda: check(store, marker, n_jobs), seed=11)
    assert at_points >= 10, "too few deaths at exact crash points"
    # then let it finish the workload undisturbed
    run_until(argv, env, lambda: not store.list_jobs(states=ACTIVE_STATES))
    check(store, marker, n_jobs)
    assert sorted(ran(marker)) == sorted(j.id for j in store.list_jobs(states=None))
    assert {j.state for j in store.list_jobs(states=None)} == {JobState.SUCCEEDED}
