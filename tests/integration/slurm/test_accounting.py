"""Finished jobs read from Slurm's accounting (slurmdbd + MariaDB, started by scripts/services/
slurm.sh when installed): plain `sacct`, each cluster answering for its own jobs."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from carbonplan.domain import JobState
from carbonplan.executors.slurm import SlurmExecutor
from carbonplan.executors.slurm_formats import FINAL_STATES

from .conftest import Cluster, site_config, wait_for, wait_state
from .test_executor import admit, announce

pytestmark = pytest.mark.slurm


@pytest.fixture
def acct(north: Cluster, central: Cluster) -> SlurmExecutor:
    if os.environ.get("CARBONPLAN_TEST_SLURM_ACCOUNTING") != "1":
        pytest.skip("no slurmdbd: scripts/test starts one when slurmdbd and MariaDB are installed")
    cfg = site_config(north.conf, central.conf, accounting=True)
    return SlurmExecutor(cfg.executor.slurm, cfg.to_site())


def test_finished_jobs_come_from_accounting_per_cluster(north: Cluster, central: Cluster,
                                                        acct: SlurmExecutor) -> None:
    a, err = north.sbatch("-t", "1", "-p", "b", script="exit 0")
    assert a is not None, err
    b, err = central.sbatch("-t", "1", script="exit 4")
    assert b is not None, err
    got = {}
    for cluster, jid in ((north, a), (central, b)):
        # slurmdbd fills in the partition a few seconds after the end (measured: about 4 s);
        # the daemon asks only once slurmctld has purged the job (MinJobAge), long after. A
        # job still waiting for its node is in accounting too (PENDING, with its partition)
        got[cluster.name] = wait_for(
            f"{cluster.name}:{jid} in accounting, finished, with its partition",
            lambda c=cluster, j=jid: (f := acct.clusters[c.name].finished([j]).get(j))
            and f.state in FINAL_STATES and f.partition and f, timeout=120)
    f, g = got["north"], got["central"]
    assert (f.state, f.partition, f.exit_code) == ("COMPLETED", "b", 0)
    assert (g.state, g.partition, g.exit_code) == ("FAILED", "gpu", 4)
    rec = north.job(a)
    if rec is not None:  # still in slurmctld's memory (MinJobAge): the times agree
        assert int(f.started_at.timestamp()) == rec["start_time"]
        assert int(f.ended_at.timestamp()) == rec["end_time"]
    # one slurmdbd, two clusters whose job ids overlap: north never answers for central's job
    other = acct.clusters["north"].finished([b]).get(b)
    assert other is None or other.partition != "gpu"


def test_poll_reports_a_job_that_left_the_queue_from_accounting(north: Cluster, store,
                                                                acct: SlurmExecutor) -> None:
    """The daemon's case: the job ran as planned, finished while nobody polled, and
    slurmctld purged it (MinJobAge=30 s here); only accounting still knows how it ended."""
    jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1",
                            "--deadline=now+2hours", script="sleep 1; exit 3")
    assert jid is not None, err
    job = admit(store, acct, north, jid)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    res = announce(store, acct, job, "north-b/a100-80gb/owned", start)
    assert res.ok, res.detail
    wait_for(f"north:{jid} to run and leave the queue", lambda: north.job(jid) is None,
             timeout=120, every=1.0)
    final = wait_state(store, acct, job.id, {JobState.FAILED, JobState.SUCCEEDED})
    assert final.state == JobState.FAILED and final.exit_code == 3
    assert final.started_at >= start and final.ended_at >= final.started_at
    assert final.ran_pool == "north-b/a100-80gb/owned"
    assert [e.to_state for e in store.events(job.id)] == [
        JobState.QUEUED, JobState.PLANNED, JobState.RUNNING, JobState.FAILED]


def test_simulate_reads_this_clusters_accounting(north: Cluster, central: Cluster,
                                                  acct: SlurmExecutor, tmp_path) -> None:
    """`carbonplan simulate` on the export docs/simulate.md gives, from a real slurmdbd: the
    GPU job is a trace job with its GPUs, run time and submission; the CPU job is skipped."""
    from carbonplan.sim import load_trace

    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    gpu, err = north.sbatch("-t", "1", "--gres=gpu:a100:2", "-J", "cp-train", script="sleep 2")
    assert gpu is not None, err
    cpu, err = north.sbatch("-t", "1", "-J", "cp-prep", script="true")
    assert cpu is not None, err

    def export() -> str | None:
        # job ids restart with a cluster's state, and slurmdbd keeps the older jobs: select
        # ours by name and submission time, and wait until both have finished
        cp = subprocess.run(
            ["sacct", "-a", "-X", "-P", "-S", since.strftime("%Y-%m-%dT%H:%M:%S"),
             "--name", "cp-train,cp-prep", "-o",
             "JobID,JobName,User,Account,Submit,Start,Elapsed,AllocTRES,State"],
            env={**north.env(), "TZ": "UTC"}, capture_output=True, text=True, timeout=30,
            check=False)
        assert cp.returncode == 0, cp.stderr
        rows = [line.split("|") for line in cp.stdout.splitlines()[1:]]
        done = [r for r in rows if r[-1].split()[0] in FINAL_STATES]
        return cp.stdout if len(done) == 2 and len(rows) == 2 else None

    text = wait_for("both jobs finished in accounting", export, timeout=120, every=1.0)
    path = tmp_path / "north.sacct"
    path.write_text(text)
    trace = load_trace(path, site_config(north.conf, central.conf).to_site())
    assert trace.skipped == {"no GPU": 1}, text
    (job,) = trace.jobs
    assert (job.name, job.gpus, job.id) == ("cp-train", 2, job.id)
    assert 2 / 3600 <= job.hours <= 30 / 3600, text               # it slept 2 s
    assert since <= job.submitted_at <= datetime.now(UTC), text   # read as UTC
