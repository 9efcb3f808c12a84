"""Jobs moved between the two test clusters joined in a real Slurm federation (slurmdbd).

The federation exists only while a test here runs: it is made with sacctmgr and removed after,
so the other tests see two separate clusters. What these tests pin down was measured on Slurm
22.05: a job submitted to north is listed on central too (a sibling under the same id), a move
must set the GRES before `Clusters=` in a call of its own, the job then lives on central while
north keeps a REVOKED record, and its accounting is central's.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from carbonplan.domain import JobState
from carbonplan.executors.slurm import SlurmExecutor
from carbonplan.executors.slurm_formats import FINAL_STATES

from .conftest import Cluster, site_config, wait_for, wait_state
from .test_executor import REPORT, admit, announce
from .test_requeue import check_requeues

pytestmark = pytest.mark.slurm

FEDERATION = "cptest"
CENTRAL = "central/h100-sxm/owned"


def federation_state(cluster: Cluster) -> str:
    return cluster.cmd("scontrol", "show", "federation").stdout


@pytest.fixture
def fed(north: Cluster, central: Cluster) -> Iterator[SlurmExecutor]:
    if os.environ.get("CARBONPLAN_TEST_SLURM_ACCOUNTING") != "1":
        pytest.skip("no slurmdbd: scripts/test starts one when slurmdbd and MariaDB are installed")
    cp = north.cmd("sacctmgr", "-i", "add", "federation", FEDERATION,
                   "clusters=north,central")
    assert cp.returncode == 0, cp.stderr
    try:
        for c in (north, central):  # each controller hears of it from slurmdbd, then syncs
            wait_for(f"{c.name} to join the federation",
                     lambda c=c: "Synced:Yes" in federation_state(c), timeout=30)
        cfg = site_config(north.conf, central.conf, federation=True)
        yield SlurmExecutor(cfg.executor.slurm, cfg.to_site())
    finally:
        north.cancel_all()
        central.cancel_all()
        subprocess.run(["sacctmgr", "-i", "delete", "federation", FEDERATION],
                       env=north.env(), capture_output=True, timeout=30, check=False)
        for c in (north, central):
            wait_for(f"{c.name} to leave the federation",
                     lambda c=c: FEDERATION not in federation_state(c), timeout=30)


def test_a_job_moves_to_another_cluster_runs_there_and_is_followed(
        north: Cluster, central: Cluster, fed: SlurmExecutor, store) -> None:
    jid, err = north.sbatch("--comment", "carbonplan", "-t", "5", "--gres=gpu:a100:2",
                            "--deadline=now+3hours", script=REPORT)
    assert jid is not None, err
    central.submitted.append(jid)
    job = admit(store, fed, north, jid)
    assert job.regions == []  # in a federation a job may be planned on any cluster
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    res = announce(store, fed, job, CENTRAL, later)
    assert res.ok and "Clusters" in res.detail and "Gres" in res.detail, res.detail
    there = wait_for("the job on central", lambda: (r := central.job(jid))
                     and r["job_state"] == "PENDING" and r)
    assert there["tres_per_node"] == "gres:gpu:h100:2" and there["partition"] == "gpu"
    assert there["federation_origin"] == "north" and north.job(jid)["job_state"] == "REVOKED"
    # central lists the pending job under the same id, as a copy of north's job: not a new job
    assert [d.ref for d in fed.discover() if d.ref.endswith(f":{jid}")] == []
    # the same placement in a new plan moves nothing (only the plan id in the comment); back
    # to north it cannot go
    assert announce(store, fed, store.get_job(job.id), CENTRAL, later, plan_id=2).detail == \
        "updated AdminComment"
    back = announce(store, fed, store.get_job(job.id), "north-a/a100-80gb/owned", later,
                    plan_id=3)
    assert not back.ok and "stays where it is" in back.detail
    # ... nor to any of north's pools: the planner is told them all at once
    assert set(back.refused_pools) == {name for name, t in fed.targets.items()
                                       if t.cluster == "north"} and back.refused_pools
    assert central.job(jid)["tres_per_node"] == "gres:gpu:h100:2"
    # started now, it runs on central and is reported from there
    now = datetime.now(UTC).replace(microsecond=0)
    assert announce(store, fed, store.get_job(job.id), CENTRAL, now, plan_id=4).ok
    final = wait_state(store, fed, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert final.state == JobState.SUCCEEDED and final.ran_pool == CENTRAL
    cluster, partition, _gpus, _at = north.output(jid).split()
    assert (cluster, partition) == ("central", "gpu")
    # once purged from the controllers, only central's accounting knows it: north's own
    # `sacct` has no record of a job it revoked, the federation's has
    # slurmdbd records the end a little after slurmctld ends the job: until then the record
    # says RUNNING (seen once in CI)
    rec = wait_for("the finished run in accounting", lambda: (f := fed.clusters[
        "north"].finished([jid]).get(jid)) and f.state in FINAL_STATES and f.partition and f,
        timeout=120)
    assert (rec.state, rec.cluster, rec.partition) == ("COMPLETED", "central", "gpu")
    plain = north.cmd("sacct", "-X", "-n", "-P", "-o", "JobIDRaw", "-j", str(jid))
    assert str(jid) not in plain.stdout.split()


def test_a_job_that_stays_is_read_from_its_own_run_not_a_failed_sibling(
        north: Cluster, central: Cluster, fed: SlurmExecutor, store) -> None:
    """central could not hold the a100 job's sibling (no such GPUs): its accounting has a
    FAILED record under the same id, which is not how the job ended."""
    jid, err = north.sbatch("--comment", "carbonplan", "-t", "5", "--gres=gpu:a100:1",
                            script="sleep 2")
    assert jid is not None, err
    job = admit(store, fed, north, jid)
    now = datetime.now(UTC).replace(microsecond=0)
    assert announce(store, fed, job, "north-a/a100-80gb/owned", now).ok
    final = wait_state(store, fed, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert final.state == JobState.SUCCEEDED and final.ran_pool == "north-a/a100-80gb/owned"
    both = wait_for("both clusters' records", lambda: len(set(north.cmd(
        "sacct", "--federation", "-X", "-n", "-P", "-o", "Cluster", "-j", str(jid))
        .stdout.split())) == 2)
    assert both
    rec = wait_for("north's finished record", lambda: (f := fed.clusters["north"].finished(
        [jid]).get(jid)) and f.cluster == "north" and f.state in FINAL_STATES and f, timeout=120)
    assert (rec.state, rec.cluster) == ("COMPLETED", "north")


def test_runs_a_requeue_ended_are_read_from_the_cluster_that_ran_them(
        north: Cluster, fed: SlurmExecutor, store) -> None:
    """In a federation `sacct -D --federation` lists central's sibling records (FAILED, never
    ran) beside north's REQUEUED runs: only north's count."""
    check_requeues(fed, store, north, "north-a/a100-80gb/owned", "a100")


def test_a_fail_closed_job_moved_at_its_slot_runs_there(
        north: Cluster, central: Cluster, fed: SlurmExecutor, store) -> None:
    """Slurm makes no sibling of a held job: a fail-closed job is released to move."""
    with north.lua(settings={"mode": '"closed"'}), central.lua(settings={"mode": '"closed"'}):
        jid, err = north.sbatch("--comment", "carbonplan", "-t", "5", "--gres=gpu:a100:1",
                                script=REPORT)
        assert jid is not None, err
        central.submitted.append(jid)
        assert north.job(jid)["priority"] == 0
        job = admit(store, fed, north, jid)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        res = announce(store, fed, job, CENTRAL, start)
        assert res.ok and "released" in res.detail, res.detail
        final = wait_state(store, fed, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert final.state == JobState.SUCCEEDED and final.ran_pool == CENTRAL
    assert final.started_at >= start
    assert north.output(jid).split()[:2] == ["central", "gpu"]
