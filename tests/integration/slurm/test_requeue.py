"""Slurm requeues on real clusters: every run a requeue ends is kept as an attempt, with the
start and end Slurm recorded, whether the daemon saw it pending again or not (requeued and
restarted, or requeued, restarted and finished, between two polls)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from carbonplan.domain import JobState
from carbonplan.executors.slurm import SlurmExecutor

from .conftest import Cluster, record_updates, site_config, slurm_conf, wait_for, wait_state
from .test_executor import admit, announce

pytestmark = pytest.mark.slurm

# runs until Slurm has restarted it three times, then succeeds
SCRIPT = 'if [ "${SLURM_RESTART_COUNT:-0}" -ge 3 ]; then exit 0; fi; sleep 300'

SOURCES = {  # how the cluster tells a finished or requeued run: pool, gres, config
    "jobcomp": ("north", "north-a/a100-80gb/owned", "a100", {}),
    "sacct -c": ("central", "central/h100-sxm/owned", "h100", {}),
    "accounting": ("north", "north-a/a100-80gb/owned", "a100", {"accounting": True}),
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_run_a_requeue_ends_is_an_attempt(source: str, north: Cluster, central: Cluster,
                                                store) -> None:
    name, pool, gres, opts = SOURCES[source]
    if opts.get("accounting") and os.environ.get("CARBONPLAN_TEST_SLURM_ACCOUNTING") != "1":
        pytest.skip("no slurmdbd: scripts/test starts one when slurmdbd and MariaDB are "
                    "installed")
    cfg = site_config(slurm_conf("north"), slurm_conf("central"), **opts)
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site())
    check_requeues(ex, store, {"north": north, "central": central}[name], pool, gres)


def check_requeues(ex: SlurmExecutor, store, cluster: Cluster, pool: str, gres: str) -> None:
    """A job requeued three times on `cluster`: seen pending again, then requeued and
    restarted between two polls, then requeued, restarted and finished between two polls."""
    name = cluster.name
    jid, err = cluster.sbatch("--qos=carbon", "-t", "5", f"--gres=gpu:{gres}:1", "--requeue",
                              "--deadline=now+2hours", script=SCRIPT)
    assert jid is not None, err
    job = admit(store, ex, cluster, jid)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    res = announce(store, ex, job, pool, start)
    assert res.ok, res.detail

    def slurm_state() -> dict:
        rec = cluster.job(jid)
        assert rec is not None, f"{name}:{jid} left the queue"
        return rec

    def running_after(t: datetime | None):
        """Slurm's record once the job runs from a start later than `t`."""
        return wait_for(f"{name}:{jid} to run again", lambda: (r := slurm_state())[
            "job_state"] == "RUNNING" and (t is None or r["start_time"] > t.timestamp())
            and r, timeout=60)

    def requeue(*, restart: bool) -> datetime:
        """`scontrol requeue` (Slurm then holds the job 120 s), and lift the hold when
        `restart`; the time of the requeue. Each run lasts 2 s first, and the next starts in
        another second: slurmctld revokes a killed run's credential for the rest of the second
        and a restart inside it fails ("Job credential revoked")."""
        time.sleep(2)
        at = datetime.now(UTC)
        cp = cluster.cmd("scontrol", "requeue", str(jid))
        assert cp.returncode == 0, cp.stderr
        wait_for(f"{name}:{jid} pending after requeue",
                 lambda: slurm_state()["job_state"] == "PENDING")
        if restart:
            lift_hold()
        return at

    def lift_hold() -> None:
        time.sleep(1.5)
        cp = cluster.cmd("scontrol", "update", f"JobId={jid}", "StartTime=now")
        assert cp.returncode == 0, cp.stderr

    def recorded(runs: int) -> None:
        """Wait until the cluster has written `runs` ended runs (slurmdbd lags seconds)."""
        wait_for(f"{runs} ended runs of {name}:{jid} in Slurm's records",
                 lambda: sum(r.ended_at is not None and r.started_at is not None
                             for r in ex.clusters[name].runs([jid]).get(jid, [])) >= runs,
                 timeout=60)

    # run 0: seen running, then seen pending again
    job = wait_state(store, ex, job.id, {JobState.RUNNING})
    first_start = job.started_at
    requeued_at = requeue(restart=False)
    recorded(1)
    job = record_updates(store, job, ex)
    assert job.state == JobState.QUEUED and job.started_at is None
    (a0,) = store.attempts([job.id])
    assert (a0.pool, a0.started_at, a0.end_reported) == (pool, first_start, True)
    assert requeued_at - timedelta(seconds=2) <= a0.ended_at <= requeued_at + timedelta(
        seconds=5), "the run's end as Slurm recorded it, not the time of the poll"
    assert a0.reason.startswith("requeued by Slurm")

    # a daemon that starts now sees restart_cnt 1 and reads the records: nothing new
    fresh = SlurmExecutor(ex.settings, ex.site)
    assert fresh.poll([store.get_job(job.id)]) == []

    # run 1: started by lifting the hold; seen running
    lift_hold()
    job = wait_state(store, ex, job.id, {JobState.RUNNING})
    s1 = job.started_at

    # run 2 replaces run 1 between two polls: requeued and restarted, never seen pending
    requeue(restart=True)
    rec = running_after(s1)
    recorded(2)
    job = record_updates(store, job, ex)
    assert job.state == JobState.RUNNING
    assert int(job.started_at.timestamp()) == rec["start_time"]
    a1 = store.attempts([job.id])[1]
    assert (a1.started_at, a1.end_reported) == (s1, True)
    assert s1 <= a1.ended_at <= job.started_at

    # run 3 (succeeds at once) replaces run 2 between two polls: requeued, restarted, ended
    requeue(restart=True)
    wait_for(f"{name}:{jid} to succeed",
             lambda: slurm_state()["job_state"] == "COMPLETED", timeout=60)
    recorded(4)
    final_start = slurm_state()["start_time"]
    job = record_updates(store, job, ex)
    assert job.state == JobState.SUCCEEDED and job.exit_code == 0
    assert int(job.started_at.timestamp()) == final_start and job.ran_pool == pool
    attempts = store.attempts([job.id])
    assert len(attempts) == 3 and all(a.end_reported and a.pool == pool for a in attempts)
    starts = [a.started_at for a in attempts] + [job.started_at]
    ends = [a.ended_at for a in attempts] + [job.ended_at]
    assert all(s <= e for s, e in zip(starts, ends, strict=True))
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False)), "runs overlap"
    assert [e.to_state for e in store.events(job.id)] == [
        JobState.QUEUED, JobState.PLANNED,
        JobState.RUNNING, JobState.QUEUED,   # run 0, seen pending again
        JobState.RUNNING, JobState.QUEUED,   # run 1, requeued between polls
        JobState.RUNNING, JobState.QUEUED,   # run 2, requeued between polls
        JobState.RUNNING, JobState.SUCCEEDED]
