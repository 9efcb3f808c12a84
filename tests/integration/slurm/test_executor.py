"""The Slurm executor on real clusters: discover, apply placements, poll to completion."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from carbonplan.domain import Job, JobState, Placement
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind
from carbonplan.executors.intake import admit_discovered
from carbonplan.executors.slurm import SlurmExecutor

from .conftest import Cluster, wait_for, wait_state

pytestmark = pytest.mark.slurm

# The job prints where and when it ran.
REPORT = "echo $SLURM_CLUSTER_NAME $SLURM_JOB_PARTITION $CUDA_VISIBLE_DEVICES $(date +%s)"


def discovered(ex: SlurmExecutor, ref: str):
    return next((d for d in ex.discover() if d.ref == ref), None)


def admit(store, ex: SlurmExecutor, cluster: Cluster, jid: int) -> Job:
    """Discover one job and store it, as the daemon's intake does."""
    d = wait_for(f"job {jid} to be discovered", lambda: discovered(ex, f"{cluster.name}:{jid}"),
                 timeout=10)
    return store.add_job(d.spec, actor="slurm")


def placement(job: Job, pool: str, start: datetime, minutes: float = 1.0) -> Placement:
    return Placement(job_id=job.id, pool=pool, start=start,
                     end=start + timedelta(minutes=minutes), units=1, energy_kwh=0.1,
                     kg_co2e=0.01, cost_usd=0.0)


def announce(store, ex: SlurmExecutor, job: Job, pool: str, start: datetime, plan_id: int = 1):
    """Apply one ANNOUNCE of `job` on `pool` at `start`, as the daemon does; its result."""
    (out,) = apply_actions(store, ex, [Action(ActionKind.ANNOUNCE, job,
                                              placement(job, pool, start), plan_id=plan_id)])
    return out.result


def test_discovery_turns_squeue_records_into_jobs(north: Cluster, ex: SlurmExecutor) -> None:
    mig, err = north.sbatch("--qos=carbon", "-J", "infer", "-t", "30",
                            "--gres=gpu:a100_3g.40gb:1", "--deadline=now+3hours",
                            "--begin=now+1hour", "--comment", "carbonplan:hours=0.25")
    assert mig is not None, err
    plain, err = north.sbatch("--qos=carbon", "-t", "90", "--gres=gpu:a100:2", "-p", "b")
    assert plain is not None, err
    untagged, err = north.sbatch("-t", "5", "--begin=now+1hour")
    assert untagged is not None, err
    found = {d.ref: d for d in ex.discover()}
    assert f"north:{untagged}" not in found

    rec = north.job(mig)
    d = found[f"north:{mig}"]
    s = d.spec
    assert (s.source, s.external_id, s.name, s.user) == ("slurm", f"north:{mig}", "infer", "root")
    assert (s.gpus, s.gpu_types, s.mig) == (1, ["a100-80gb"], "3g.40gb")
    # 0.25 h on a 3/7 slice of an A100-80GB (speed 1.0) = 0.25 * 3/7 reference-GPU hours
    assert s.hours == pytest.approx(0.25 * 3 / 7)
    assert s.deadline == datetime.fromtimestamp(rec["deadline"], UTC)
    assert s.not_before == datetime.fromtimestamp(rec["eligible_time"], UTC)
    assert s.regions == ["north-a", "north-b"] and s.home_region == "north-a"
    assert d.pool == "north-a/a100-80gb:3g.40gb/owned" and d.state == JobState.QUEUED

    rec = north.job(plain)
    s = found[f"north:{plain}"].spec
    assert (s.gpus, s.gpu_types, s.mig, s.hours) == (2, ["a100-80gb"], None, 1.5)
    # no --deadline: submit + time limit + the site's default slack (2h)
    assert s.deadline == datetime.fromtimestamp(rec["submit_time"], UTC) + timedelta(hours=3.5)
    assert s.not_before is None and found[f"north:{plain}"].pool == "north-b/a100-80gb/owned"


def test_a_placement_moves_start_and_partition_and_the_job_runs_then_there(
        north: Cluster, ex: SlurmExecutor, store) -> None:
    jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1",
                            "--deadline=now+1hour", script=REPORT)
    assert jid is not None, err
    job = admit(store, ex, north, jid)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    res = announce(store, ex, job, "north-b/a100-80gb/owned", start, plan_id=1)
    assert res.ok, res.detail
    assert res.detail == "updated StartTime, Partition, AdminComment"
    assert store.get_job(job.id).state == JobState.PLANNED
    rec = north.job(jid)
    assert rec["job_state"] == "PENDING" and rec["partition"] == "b"
    assert rec["eligible_time"] == int(start.timestamp())
    assert rec["admin_comment"] == ("[carbonplan:planned via=qos mode=open pool=north-b/"
                                    f"a100-80gb/owned start={start:%Y-%m-%dT%H:%M:%SZ} plan=1]")

    done = wait_state(store, ex, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert done.state == JobState.SUCCEEDED and done.exit_code == 0
    assert done.started_at >= start and done.ran_pool == "north-b/a100-80gb/owned"
    cluster, partition, gpus, ran_at = north.output(jid).split()
    assert (cluster, partition) == ("north", "b") and gpus.isdigit()
    assert int(ran_at) >= int(start.timestamp())
    history = [e.to_state for e in store.events(job.id)]
    assert history == [JobState.QUEUED, JobState.PLANNED, JobState.RUNNING, JobState.SUCCEEDED]


def test_the_second_cluster_is_a_second_region(central: Cluster, ex: SlurmExecutor,
                                               store) -> None:
    jid, err = central.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:h100:2",
                              "--deadline=now+1hour", script=REPORT + "; exit 3")
    assert jid is not None, err
    job = admit(store, ex, central, jid)
    assert job.gpu_types == ["h100-sxm"] and job.regions == ["central"]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    res = announce(store, ex, job, "central/h100-sxm/owned", start, plan_id=2)
    assert res.ok and res.detail == "updated StartTime, AdminComment"
    done = wait_state(store, ex, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert done.state == JobState.FAILED and done.exit_code == 3
    assert done.started_at >= start and done.ran_pool == "central/h100-sxm/owned"
    cluster, partition, gpus, _ = central.output(jid).split()
    assert (cluster, partition, gpus) == ("central", "gpu", "0,1")


# the squeue fields an announce may change (StartTime, Partition, Gres, AdminComment; Clusters
# in a federation); the rest is the scheduler's bookkeeping (accrue_time, state_reason, ...)
CARBONPLAN_SETS = ("begin_time", "partition", "tres_per_node", "admin_comment", "time_limit",
                   "cluster")


def test_another_cluster_needs_a_federation(north: Cluster, ex: SlurmExecutor, store) -> None:
    jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1")
    assert jid is not None, err
    job = admit(store, ex, north, jid)
    before = north.job(jid)
    p = placement(job, "central/h100-sxm/owned", datetime.now(UTC) + timedelta(minutes=1))
    result = ex.apply(Action(ActionKind.ANNOUNCE, job, p, plan_id=3))
    assert not result.ok and not result.retryable
    assert "submitted to north (no federation)" in result.detail
    # nor will any other of central's pools take it: all named, for the planner to leave out
    assert "central/h100-sxm/owned" in result.refused_pools and all(
        ex.targets[name].cluster == "central" for name in result.refused_pools)
    now_ = north.job(jid)  # nothing carbonplan sets changed (Slurm's bookkeeping may)
    assert {k: now_.get(k) for k in CARBONPLAN_SETS} == {k: before.get(k) for k in CARBONPLAN_SETS}


def test_the_same_placement_twice_changes_nothing(north: Cluster, cfg, store,
                                                  monkeypatch) -> None:
    calls: list[list[str]] = []

    def recording_run(argv, **kw):
        calls.append(argv)
        return subprocess.run(argv, **kw)

    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=recording_run)
    jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100_3g.40gb:1")
    assert jid is not None, err
    job = admit(store, ex, north, jid)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    # a bigger job slot: the same GPUs, but the planner picked whole-GPU partition b
    action = Action(ActionKind.ANNOUNCE, job, placement(job, "north-b/a100-80gb/owned", start),
                    plan_id=4)
    first = ex.apply(action)
    assert first.ok and first.detail == "updated StartTime, Partition, Gres, AdminComment"
    after_first = north.job(jid)
    assert after_first["tres_per_node"] == "gres:gpu:a100:1"
    calls.clear()
    second = ex.apply(action)
    assert second.ok and second.detail == "unchanged"
    assert [c[:2] for c in calls] == [["squeue", "--json"]]  # read, compare, no update
    # what carbonplan sets is unchanged (Slurm's scheduler may touch its own bookkeeping fields,
    # such as state_reason and accrue_time, between the two reads)
    now_ = north.job(jid)
    assert {k: now_.get(k) for k in CARBONPLAN_SETS} == \
        {k: after_first.get(k) for k in CARBONPLAN_SETS}
    # through the exactly-once wrapper: the first records, the second is skipped
    outcomes = apply_actions(store, ex, [action, action])
    assert outcomes[0].result.detail == "unchanged" and outcomes[1].skipped


def test_fail_closed_job_is_released_at_its_slot(north: Cluster, ex: SlurmExecutor,
                                                 store) -> None:
    with north.lua(settings={"mode": '"closed"'}):
        jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1", script=REPORT)
    assert jid is not None, err
    assert north.job(jid)["priority"] == 0
    job = admit(store, ex, north, jid)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    res = announce(store, ex, job, "north-a/a100-80gb/owned", start, plan_id=5)
    assert res.ok and res.detail == "updated StartTime, AdminComment, released"
    rec = north.job(jid)
    assert rec["priority"] > 0 and rec["eligible_time"] == int(start.timestamp())
    done = wait_state(store, ex, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert done.state == JobState.SUCCEEDED and done.started_at >= start
    assert north.output(jid).split()[1] == "a"


def test_the_latest_start_keeps_the_deadline(north: Cluster, ex: SlurmExecutor, store) -> None:
    jid, err = north.sbatch("--qos=carbon", "-t", "10", "--deadline=now+30minutes")
    assert jid is not None, err
    job = admit(store, ex, north, jid)
    deadline = datetime.fromtimestamp(north.job(jid)["deadline"], UTC)
    late = placement(job, "north-a/a100-80gb/owned", deadline - timedelta(minutes=5))
    result = ex.apply(Action(ActionKind.ANNOUNCE, job, late, plan_id=6))
    assert result.ok and "latest safe start" in result.detail
    latest = deadline - timedelta(minutes=10) - timedelta(minutes=1)  # limit, start_margin
    assert north.job(jid)["eligible_time"] == int(latest.timestamp())


def test_a_job_whose_deadline_cannot_be_met_is_reported_not_dropped(
        north: Cluster, ex: SlurmExecutor, cfg, store) -> None:
    # two hours of work, one hour to the deadline: Slurm accepts it, carbonplan cannot plan it
    jid, err = north.sbatch("--qos=carbon", "-t", "120", "--gres=gpu:a100:1",
                            "--deadline=now+1hour")
    assert jid is not None, err
    site = cfg.to_site()
    admitted = wait_for("the job to be admitted", lambda: [
        a for a in admit_discovered(store, ex, site) if a.job.external_id == f"north:{jid}"],
        timeout=10)
    (a,) = admitted
    assert a.problem.startswith("--deadline: leaves 1h") and "needs 2h" in a.problem
    job = store.get_job(a.job.id)
    assert job.state == JobState.SUBMITTED and job.executor_ref == f"north:{jid}"
    reasons = [e.reason for e in store.events(job.id)]
    assert "not planned: --deadline: leaves 1h" in reasons[0]
    assert reasons[-1].startswith("not planned (--deadline")
    # handed back to Slurm as submitted (released now), never silently kept or cancelled
    rec = north.job(jid)
    assert rec is not None and "[carbonplan:released " in rec["admin_comment"]
    # admitted once: a second intake finds nothing new
    assert not [a for a in admit_discovered(store, ex, site)
                if a.job.external_id == f"north:{jid}"]
    # Slurm then applies its own --deadline rule, and carbonplan reports what happened
    # (it cannot end by its deadline, so Slurm cancels it with state DEADLINE)
    final = wait_state(store, ex, job.id, {JobState.MISSED_DEADLINE, JobState.SUCCEEDED,
                                           JobState.FAILED, JobState.CANCELLED})
    assert final.state == JobState.MISSED_DEADLINE and final.started_at is None
    assert [e.to_state for e in store.events(job.id)] == [
        JobState.QUEUED, JobState.SUBMITTED, JobState.MISSED_DEADLINE]
    assert store.events(job.id)[-1].reason == "Slurm DEADLINE"


def test_completion_is_read_from_jobcomp_and_sacct_c(north: Cluster, central: Cluster,
                                                     ex: SlurmExecutor) -> None:
    a, err = north.sbatch("-t", "1", script="exit 0")
    assert a is not None, err
    b, err = central.sbatch("-t", "1", script="exit 4")
    assert b is not None, err
    for cluster, jid in ((north, a), (central, b)):
        wait_for(f"{cluster.name}:{jid} to finish",
                 lambda c=cluster, j=jid: (c.job(j) or {}).get("job_state") in
                 ("COMPLETED", "FAILED"))
    # north reads its jobcomp file directly, central asks `sacct -c`
    assert ex.clusters["north"].jobcomp is not None
    f = wait_for("north's jobcomp record", lambda: ex.clusters["north"].finished([a]).get(a))
    assert (f.state, f.partition, f.exit_code) == ("COMPLETED", "a", 0)
    rec = north.job(a)
    assert int(f.started_at.timestamp()) == rec["start_time"]
    assert int(f.ended_at.timestamp()) == rec["end_time"]
    g = wait_for("central's sacct -c record", lambda: ex.clusters["central"].finished([b]).get(b))
    assert (g.state, g.partition, g.exit_code) == ("FAILED", "gpu", 4)
    assert int(g.started_at.timestamp()) == central.job(b)["start_time"]


def test_discovered_jobs_feed_the_instance_builder(north: Cluster, central: Cluster,
                                                   ex: SlurmExecutor, cfg, store) -> None:
    """The planner's input contract: a Slurm job is planned within its cluster, in seconds."""
    import numpy as np

    from carbonplan.planner.build import build_instance

    a, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1", "--deadline=now+2hours")
    assert a is not None, err
    b, err = central.sbatch("--qos=carbon", "-t", "2", "--gres=gpu:h100:1",
                            "--deadline=now+2hours")
    assert b is not None, err
    jobs = [admit(store, ex, north, a), admit(store, ex, central, b)]

    def flat(zones, t0, n, slot_h):
        return np.full((len(zones), n), 100.0), {}

    built = build_instance(jobs, cfg.to_site(), flat, now=datetime.now(UTC), slot_h=10 / 3600)
    inst = built.inst
    names = list(inst.pool_names)
    north_pools = [names.index("north-a/a100-80gb/owned"), names.index("north-b/a100-80gb/owned")]
    assert sorted(np.flatnonzero(inst.eligible[0])) == sorted(north_pools)
    assert list(np.flatnonzero(inst.eligible[1])) == [names.index("central/h100-sxm/owned")]
    assert inst.duration_slots[0, north_pools[0]] == 6      # 1 min in 10 s slots
    assert inst.duration_slots[1, names.index("central/h100-sxm/owned")] == 12
