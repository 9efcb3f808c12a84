"""Crash safety with real Slurm: `carbonplan daemon --executor slurm` is SIGKILLed 50 times, at
random moments and at exact points of its cycle, while it discovers, plans and moves sbatch jobs;
after every death no job is lost or run twice, and every job finishes by its deadline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from carbonplan.domain import ACTIVE_STATES, JobState
from carbonplan.store import open_store
from crash_drill import kill_repeatedly, run_until

from .conftest import Cluster, slurm_conf

N_JOBS = 8


def config(north: str, central: str, jobcomp: str) -> str:
    return f"""
[planner]
slot = "2s"
horizon = "15m"
time_limit_s = 3
freeze_window = "2s"

[executor]
kind = "slurm"

[executor.slurm]
default_slack = "10m"
start_margin = "5s"
command_timeout_s = 20
gres = {{ a100 = "a100-80gb", h100 = "h100-sxm" }}

[executor.slurm.clusters.north]
slurm_conf = "{north}"
jobcomp = "{jobcomp}"

[executor.slurm.clusters.central]
slurm_conf = "{central}"

[[regions]]
name = "north-a"
zone = "PL"

[[regions]]
name = "north-b"
zone = "NO-NO1"

[[regions]]
name = "central"
zone = "DE"

[[pools]]
region = "north-a"
accelerator = "a100-80gb"
market = "owned"
capacity = 4
labels = {{ cluster = "north", partition = "a" }}

[[pools]]
region = "north-b"
accelerator = "a100-80gb"
market = "owned"
capacity = 4
labels = {{ cluster = "north", partition = "b" }}

[[pools]]
region = "central"
accelerator = "h100-sxm"
market = "owned"
capacity = 4
labels = {{ cluster = "central", partition = "gpu" }}
"""


@pytest.mark.slow
def test_sigkill_the_slurm_daemon_at_many_points(north: Cluster, tmp_path: Path) -> None:
    central = slurm_conf("central")
    jobcomp = Path(north.conf).parents[1] / "log" / "jobcomp.txt"
    cfg = tmp_path / "carbonplan.toml"
    cfg.write_text(config(north.conf, central, str(jobcomp)))
    db = tmp_path / "crash.db"
    marker = tmp_path / "ran.txt"
    ids = []
    for _ in range(N_JOBS):
        jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1",
                                "--comment=carbonplan:hours=0.0015", "--deadline=now+900",
                                script=f"echo $SLURM_JOB_ID >> {marker}; sleep 2")
        assert jid is not None, err
        ids.append(jid)
    env = {**os.environ, "CARBONPLAN_DB": str(db), "CARBONPLAN_CONFIG": str(cfg)}
    argv = [sys.executable, "-m", "carbonplan", "daemon", "--interval", "0.5s",
            "--log-level", "warning"]
    store = open_store(str(db))

    def check() -> None:
        jobs = store.list_jobs(states=None)
        ext = [j.external_id for j in jobs]
        assert len(ext) == len(set(ext)), "a Slurm job was admitted twice"
        assert set(ext) <= {f"north:{i}" for i in ids}
        runs = marker.read_text().split() if marker.exists() else []
        assert len(runs) == len(set(runs)), f"a job ran twice: {runs}"
        bad = [(j.external_id, j.state.value) for j in jobs
               if j.state not in ACTIVE_STATES and j.state != JobState.SUCCEEDED]
        assert not bad, f"jobs ended badly: {bad}"

    at_points = kill_repeatedly(argv, env, check, seed=3)
    assert at_points >= 10, "too few deaths at exact crash points"
    run_until(argv, env, lambda: len(store.list_jobs(states=None)) >= N_JOBS
              and not store.list_jobs(states=ACTIVE_STATES))
    check()
    jobs = store.list_jobs(states=None)
    assert sorted(j.external_id for j in jobs) == sorted(f"north:{i}" for i in ids)
    assert {j.state for j in jobs} == {JobState.SUCCEEDED}
    assert sorted(marker.read_text().split()) == sorted(str(i) for i in ids)
    for j in jobs:
        assert j.ended_at is None or j.ended_at <= j.deadline
