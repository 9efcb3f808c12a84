"""The Slurm executor without Slurm: translation, argv, idempotency and errors (fake commands).

The same paths run on real clusters in tests/integration/slurm/.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonplan.config import parse_config
from carbonplan.domain import JobSpec, JobState, Placement
from carbonplan.executors import make_executor
from carbonplan.executors.base import Action, ActionKind
from carbonplan.executors.slurm import SlurmExecutor, slurm_time
from carbonplan.executors.slurm_formats import (
    Finished,
    Tag,
    colon_exit_code,
    federated_record,
    has_word,
    hours_estimate,
    parse_jobcomp_line,
    parse_sacct_row,
    parse_tag,
    wait_status_exit_code,
    with_tag,
)
from carbonplan.store import open_store

NOW = datetime.now(UTC).replace(microsecond=0)


def config(**slurm):
    acct = {"accounting": True} if slurm.get("federation") else {}  # a federation needs it
    return parse_config({
        "executor": {"kind": "slurm", "slurm": {
            "clusters": {"north": {"slurm_conf": "/etc/north/slurm.conf", **acct},
                         "central": {"slurm_conf": "/etc/central/slurm.conf", **acct}},
            "gres": {"a100": "a100-80gb", "a100_3g.40gb": "a100-80gb:3g.40gb",
                     "h100": "h100-sxm"}, **slurm}},
        "regions": [{"name": "north", "zone": "SE"}, {"name": "central", "zone": "DE"}],
        "pools": [
            {"region": "north", "accelerator": "a100-80gb", "market": "owned", "capacity": 8,
             "labels": {"cluster": "north", "partition": "gpu"}},
            {"region": "north", "accelerator": "a100-80gb", "mig": "3g.40gb", "market": "owned",
             "capacity": 4, "labels": {"cluster": "north", "partition": "mig"}},
            {"region": "central", "accelerator": "h100-sxm", "market": "owned", "capacity": 8,
             "labels": {"cluster": "central", "partition": "gpu"}},
        ]})


class FakeSlurm:
    """Answers squeue --json from a job table and records every command with its SLURM_CONF."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[dict]] = {"/etc/north/slurm.conf": [],
                                            "/etc/central/slurm.conf": []}
        self.calls: list[tuple[str, list[str]]] = []
        self.fail: subprocess.CompletedProcess | Exception | None = None
        self.on_write: Callable[[list[str]], None] | None = None  # how "Slurm" reacts

    def __call__(self, argv, *, env, **kw):
        conf = env["SLURM_CONF"]
        self.calls.append((conf, argv))
        if self.fail is not None:
            if isinstance(self.fail, Exception):
                raise self.fail
            return self.fail
        if argv[:2] == ["squeue", "--json"]:
            return subprocess.CompletedProcess(argv, 0, json.dumps({"jobs": self.jobs[conf]}),
                                               "")
        if self.on_write is not None:
            self.on_write(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    def writes(self) -> list[list[str]]:
        return [a for _, a in self.calls if a[0] != "squeue"]


def squeue_job(jid: int, **kw) -> dict:
    rec = {"job_id": jid, "job_state": "PENDING", "name": "train", "user_name": "ana",
           "account": "nlp", "partition": "gpu", "time_limit": 120,
           "tres_per_node": "gres:gpu:a100:2", "tres_per_job": "", "node_count": 1,
           "submit_time": int(NOW.timestamp()), "deadline": int((NOW + timedelta(hours=8))
                                                              .timestamp()),
           "eligible_time": int((NOW + timedelta(minutes=5)).timestamp()), "start_time": 0,
           "end_time": 0, "priority": 1000, "exit_code": 0, "comment": "",
           "admin_comment": "[carbonplan:tagged via=qos mode=open]", "command": "/home/ana/t.sh",
           "current_working_directory": "/home/ana", "qos": ""}
    rec.update(kw)
    return rec


@pytest.fixture
def fake() -> FakeSlurm:
    return FakeSlurm()


@pytest.fixture
def ex(fake: FakeSlurm) -> SlurmExecutor:
    cfg = config()
    return SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(str(tmp_path / "s.db"))
    yield s
    s.close()


def stored(store, ex: SlurmExecutor, fake: FakeSlurm, rec: dict, cluster: str = "north"):
    fake.jobs[f"/etc/{cluster}/slurm.conf"].append(rec)
    (d,) = [d for d in ex.discover() if d.ref == f"{cluster}:{rec['job_id']}"]
    return store.add_job(d.spec)


def announce(job, pool: str, start: datetime, plan_id: int = 7) -> Action:
    p = Placement(job_id=job.id, pool=pool, start=start, end=start + timedelta(hours=2),
                  units=2, energy_kwh=1.0, kg_co2e=0.1, cost_usd=0.0)
    return Action(ActionKind.ANNOUNCE, job, p, plan_id=plan_id)


# -- formats ----------------------------------------------------------------------------------


def test_tag_round_trip_keeps_the_rest_of_the_comment() -> None:
    text = "site:billing=gpu [carbonplan:tagged via=qos mode=closed not_before=1700000000] x"
    tag = parse_tag(text)
    assert tag == Tag("tagged", {"via": "qos", "mode": "closed", "not_before": "1700000000"})
    assert tag.mode == "closed" and tag.not_before == 1700000000
    new = tag.evolve("planned", pool="north/a100-80gb/owned", start="asap")
    assert with_tag(text, new) == ("site:billing=gpu [carbonplan:planned via=qos mode=closed "
                                   "not_before=1700000000 pool=north/a100-80gb/owned "
                                   "start=asap] x")
    assert with_tag("", new) == new.render() and with_tag("keep", new) == f"keep {new.render()}"
    assert parse_tag("nothing here") is None and parse_tag(None) is None


def test_comment_words_estimates_and_exit_codes() -> None:
    assert has_word("please carbonplan:hours=2", "carbonplan")
    assert not has_word("carbonplanning", "carbonplan") and not has_word(None, "carbonplan")
    assert hours_estimate("carbonplan:hours=1.5 more") == 1.5 and hours_estimate("") is None
    assert wait_status_exit_code(3 << 8) == 3 and wait_status_exit_code(9) == 137
    assert colon_exit_code("3:0") == 3 and colon_exit_code("0:15") == 143
    f = parse_jobcomp_line("JobId=12 UserId=ana(1000) Name=x JobState=CANCELLED Partition=gpu "
                           "StartTime=2026-01-02T03:04:05 EndTime=Unknown ExitCode=0:15")
    assert (f.job_id, f.state, f.partition, f.exit_code, f.ended_at) == (
        12, "CANCELLED", "gpu", 143, None)


# -- discovery --------------------------------------------------------------------------------


def test_discovery_maps_gres_time_and_deadline(ex, fake) -> None:
    fake.jobs["/etc/north/slurm.conf"] += [
        squeue_job(1),
        squeue_job(2, tres_per_node="gres:gpu:a100_3g.40gb:1", partition="mig",
                   comment="carbonplan:hours=0.5", deadline=0, admin_comment=""),
        squeue_job(3, admin_comment="", comment="not opted in"),
        squeue_job(4, job_state="RUNNING"),
        squeue_job(5, tres_per_node="", tres_per_job="gres:gpu:a100:4", node_count=2),
    ]
    fake.jobs["/etc/central/slurm.conf"].append(squeue_job(1, tres_per_node="gres:gpu:h100:1"))
    found = {d.ref: d for d in ex.discover()}
    assert sorted(found) == ["central:1", "north:1", "north:2", "north:5"]
    a = found["north:1"].spec
    assert (a.gpus, a.gpu_types, a.mig, a.hours) == (2, ["a100-80gb"], None, 2.0)
    assert a.regions == ["north"] and a.home_region == "north" and a.project == "nlp"
    assert a.deadline == NOW + timedelta(hours=8) and a.script == "/home/ana/t.sh"
    assert found["north:1"].pool == "north/a100-80gb/owned"
    b = found["north:2"].spec  # opted in by comment, untagged: still found
    assert (b.gpu_types, b.mig) == (["a100-80gb"], "3g.40gb")
    assert b.hours == pytest.approx(0.5 * 3 / 7)
    assert b.deadline == NOW + timedelta(hours=2) + timedelta(days=1)  # limit + default slack
    assert found["north:2"].pool == "north/a100-80gb:3g.40gb/owned"
    assert found["north:5"].spec.gpus == 4  # --gpus counts per job
    c = found["central:1"].spec
    assert c.gpu_types == ["h100-sxm"] and c.hours == pytest.approx(2 * 2.2)
    assert c.regions == ["central"]


def test_federation_lets_jobs_plan_anywhere_and_unknown_gres_is_kept(fake) -> None:
    cfg = config(federation=True)
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)
    fake.jobs["/etc/north/slurm.conf"].append(squeue_job(1, tres_per_node="gres:gpu:v80:1"))
    (d,) = ex.discover()
    assert d.spec.regions == [] and d.spec.gpu_types == ["v80"] and d.pool is None


def test_a_federated_job_is_found_once_at_its_origin(fake) -> None:
    """Slurm lists a federated job's sibling on every cluster under the same id; as the origin
    owns the job, a copy on another cluster is not a second job (nor is a record without id,
    which 22.05 prints for a revoked sibling)."""
    cfg = config(federation=True)
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)
    fake.jobs["/etc/north/slurm.conf"].append(squeue_job(67108865, federation_origin="north"))
    fake.jobs["/etc/central/slurm.conf"] += [
        squeue_job(67108865, federation_origin="north", partition="gpu"),
        {k: v for k, v in squeue_job(67108866, job_state="REVOKED").items() if k != "job_id"},
        squeue_job(67108867, federation_origin="central")]
    assert sorted(d.ref for d in ex.discover()) == ["central:67108867", "north:67108865"]
    plain = SlurmExecutor(config().executor.slurm, config().to_site(), run=fake)
    assert len(plain.discover()) == 3  # outside a federation each cluster's jobs are its own


def test_an_unreachable_cluster_is_skipped(ex, fake) -> None:
    fake.fail = subprocess.CompletedProcess([], 1, "", "squeue: error: Unable to contact "
                                            "slurm controller (connect failure)")
    assert ex.discover() == []


# -- apply ------------------------------------------------------------------------------------


def test_announce_updates_only_what_differs(ex, fake, store) -> None:
    job = stored(store, ex, fake, squeue_job(1))
    start = NOW + timedelta(hours=1)
    r = ex.apply(announce(job, "north/a100-80gb:3g.40gb/owned", start))
    assert r.ok and r.ref == "north:1"
    update, comment = fake.writes()
    assert update == ["scontrol", "update", "JobId=1", f"StartTime={slurm_time(start)}",
                      "Partition=mig", "Gres=gpu:a100_3g.40gb:2"]
    assert comment == ["scontrol", "update", "JobId=1", "AdminComment=[carbonplan:planned "
                       "via=qos mode=open pool=north/a100-80gb:3g.40gb/owned "
                       f"start={start:%Y-%m-%dT%H:%M:%SZ} plan=7]"]
    # Slurm now holds what was asked: the same announce changes nothing
    rec = fake.jobs["/etc/north/slurm.conf"][0]
    rec.update(eligible_time=int(start.timestamp()), partition="mig",
               tres_per_node="gres:gpu:a100_3g.40gb:2", admin_comment=comment[3].split("=", 1)[1])
    fake.calls.clear()
    r = ex.apply(announce(job, "north/a100-80gb:3g.40gb/owned", start))
    assert r.ok and r.detail == "unchanged" and fake.writes() == []


def test_an_operator_moves_jobs_without_writing_the_admin_comment(ex, fake, store) -> None:
    """Slurm refuses AdminComment to AdminLevel=Operator (seen on 22.05 with slurmdbd)."""
    job = stored(store, ex, fake, squeue_job(1))
    plain = fake.__call__

    def operator(argv, *, env, **kw):
        if any(a.startswith("AdminComment=") for a in argv):
            fake.calls.append((env["SLURM_CONF"], argv))
            return subprocess.CompletedProcess(argv, 1, "", "Access/permission denied for job 1")
        return plain(argv, env=env, **kw)

    for c in ex.clusters.values():
        object.__setattr__(c, "run", operator)
    r = ex.apply(announce(job, "north/a100-80gb/owned", NOW + timedelta(hours=1)))
    assert r.ok and r.detail == ("updated StartTime; decision not recorded in the admin comment "
                                 "(that needs AdminLevel=Admin)")


def test_slurm_time_is_local_time_to_the_second() -> None:
    t = datetime(2026, 3, 1, 12, 30, 15, 999, tzinfo=UTC)
    assert datetime.fromisoformat(slurm_time(t)).astimezone(UTC) == t.replace(microsecond=0)


def test_hold_is_released_and_other_holds_are_not(ex, fake, store) -> None:
    held = stored(store, ex, fake, squeue_job(
        1, priority=0, admin_comment="[carbonplan:tagged via=qos mode=closed]"))
    user_held = stored(store, ex, fake, squeue_job(2, priority=0))  # --hold, fail-open tag
    for job in (held, user_held):
        assert ex.apply(announce(job, "north/a100-80gb/owned", NOW + timedelta(hours=1))).ok
    assert [a for a in fake.writes() if a[1] == "release"] == [["scontrol", "release", "1"]]


def test_no_start_past_deadline_minus_limit_minus_margin(ex, fake, store) -> None:
    job = stored(store, ex, fake, squeue_job(1))  # deadline now + 8h, limit 2h, margin 5m
    r = ex.apply(announce(job, "north/a100-80gb/owned", NOW + timedelta(hours=7)))
    assert r.ok and "latest safe start" in r.detail
    latest = NOW + timedelta(hours=8) - timedelta(hours=2) - timedelta(minutes=5)
    assert fake.writes()[0][3] == f"StartTime={slurm_time(latest)}"


def test_moving_across_clusters_needs_a_federation(fake, store, monkeypatch) -> None:
    ex = SlurmExecutor(config().executor.slurm, config().to_site(), run=fake)
    job = stored(store, ex, fake, squeue_job(1))
    r = ex.apply(announce(job, "central/h100-sxm/owned", NOW + timedelta(hours=1)))
    assert not r.ok and not r.retryable and fake.writes() == []
    cfg = config(federation=True)
    fed = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)
    monkeypatch.setattr("carbonplan.executors.slurm.MOVE_WAIT_S", 0.05)
    asked = []

    def slurm(argv: list[str]) -> None:  # central holds the job from the second request on
        if argv[-1] == "Clusters=central":
            asked.append(argv)
            if len(asked) == 2:
                fake.jobs["/etc/central/slurm.conf"].append(moved(squeue_job(1), "central")[1])

    fake.on_write = slurm
    r = fed.apply(announce(job, "central/h100-sxm/owned", NOW + timedelta(hours=1)))
    assert r.ok and "Clusters" in r.detail and len(asked) == 2
    update, clusters, again, _ = fake.writes()
    assert again == clusters
    # the origin cluster's controller is asked; the job keeps its id in the federation. The
    # GRES first, then the move in a call of its own: Slurm makes the new sibling from the job
    # as it is then, and revokes a job before it changes the other fields of the same call
    assert {conf for conf, a in fake.calls if a[0] != "squeue"} == {"/etc/north/slurm.conf"}
    assert "Gres=gpu:h100:2" in update and not any(f.startswith("Clusters") for f in update)
    assert clusters == ["scontrol", "update", "JobId=1", "Clusters=central"]
    # a cluster that never holds it: asked three times, then a failure to retry
    job2 = stored(store, fed, fake, squeue_job(2))
    asked.clear()
    r = fed.apply(announce(job2, "central/h100-sxm/owned", NOW + timedelta(hours=1)))
    assert not r.ok and r.retryable and "has not taken it" in r.detail and len(asked) == 3
    # given back to the cluster it was on: a revoked job that no cluster holds never runs
    assert fake.writes()[-1] == ["scontrol", "update", "JobId=2", "Clusters=north"]
    assert "left on north" in r.detail


def moved(rec: dict, to: str, **kw) -> tuple[dict, dict]:
    """The origin's revoked record of a job moved in the federation, and the sibling's."""
    origin = {**rec, "job_state": "REVOKED", "federation_origin": "north",
              "federation_siblings_active": to}
    return origin, {**rec, "federation_origin": "north", "partition": "gpu",
                    "tres_per_node": "gres:gpu:h100:2", **kw}


def test_a_moved_job_is_followed_to_its_sibling_and_is_not_moved_back(fake, store) -> None:
    cfg = config(federation=True)
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)
    job = stored(store, ex, fake, squeue_job(1))
    origin, sibling = moved(fake.jobs["/etc/north/slurm.conf"].pop(), "central")
    fake.jobs["/etc/north/slurm.conf"].append(origin)
    fake.jobs["/etc/central/slurm.conf"].append(sibling)
    later = NOW + timedelta(hours=3)
    r = ex.apply(announce(job, "central/h100-sxm/owned", later))
    assert r.ok and "Clusters" not in r.detail  # already there: only the start moves
    (update, _) = fake.writes()
    assert update[3:] == [f"StartTime={slurm_time(later)}"]
    fake.calls.clear()
    # back to north would need Gres=a100 on a job its origin took gpu:h100 for: refused
    r = ex.apply(announce(job, "north/a100-80gb/owned", later))
    assert not r.ok and not r.retryable and "stays where it is" in r.detail
    assert fake.writes() == []
    sibling.update(job_state="RUNNING", start_time=int(NOW.timestamp()))
    (u,) = ex.poll([job])
    assert u.state == JobState.RUNNING and u.extra["pool"] == "central/h100-sxm/owned"
    assert u.extra["cluster"] == "central"


def test_federated_accounting_keeps_the_run_that_counts() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    failed_sibling = Finished(9, "FAILED", "gpu", t, t, 1, cluster="central")
    ran = Finished(9, "CANCELLED", "a", t, t + timedelta(seconds=11), 0, cluster="north")
    assert federated_record([failed_sibling, ran], None) is ran
    assert federated_record([ran, failed_sibling], None) is ran
    assert federated_record([ran, failed_sibling], "central") is failed_sibling
    assert federated_record([failed_sibling], "north") is failed_sibling
    row = parse_sacct_row("9|COMPLETED|gpu|1700000000|1700000060|0:0|central")
    assert row is not None and row.cluster == "central" and row.state == "COMPLETED"


def test_release_without_a_plan_and_cancel(ex, fake, store) -> None:
    # a held start in the future at the time the test runs (NOW is taken at import; a suite that
    # reaches this test more than minutes later once saw it in the past: nothing to release)
    later = int(datetime.now(UTC).timestamp()) + 3600
    job = stored(store, ex, fake, squeue_job(1, eligible_time=later))
    r = ex.apply(Action(ActionKind.ANNOUNCE, job, None))
    assert r.ok
    update, comment = fake.writes()
    assert update[3].startswith("StartTime=") and "[carbonplan:released via=qos" in comment[3]
    fake.calls.clear()
    assert ex.apply(Action(ActionKind.CANCEL, job)).ok
    assert fake.writes() == [["scancel", "1"]]


@pytest.mark.parametrize("failure, retryable", [
    (subprocess.CompletedProcess([], 1, "", "slurm_update error: Invalid job id specified"),
     False),
    (subprocess.CompletedProcess([], 1, "", "Socket timed out on send/recv operation"), True),
    (subprocess.TimeoutExpired(["scontrol"], 30), True),
    (FileNotFoundError("scontrol"), False),
])
def test_command_failures_become_results(ex, fake, store, failure, retryable) -> None:
    job = stored(store, ex, fake, squeue_job(1))
    fake.fail = failure
    r = ex.apply(announce(job, "north/a100-80gb/owned", NOW + timedelta(hours=1)))
    assert not r.ok and r.retryable is retryable and r.detail


def test_gone_or_started_jobs_are_not_moved(ex, fake, store) -> None:
    job = stored(store, ex, fake, squeue_job(1))
    fake.jobs["/etc/north/slurm.conf"][0]["job_state"] = "RUNNING"
    r = ex.apply(announce(job, "north/a100-80gb/owned", NOW + timedelta(hours=1)))
    assert not r.ok and "too late" in r.detail
    fake.jobs["/etc/north/slurm.conf"].clear()
    assert "no longer queued" in ex.apply(announce(job, "north/a100-80gb/owned", NOW)).detail


# -- poll -------------------------------------------------------------------------------------


def test_poll_reports_running_then_finished(ex, fake, store, tmp_path) -> None:
    job = stored(store, ex, fake, squeue_job(1))
    rec = fake.jobs["/etc/north/slurm.conf"][0]
    assert ex.poll([job]) == []  # pending: nothing new
    start = int(NOW.timestamp())
    rec.update(job_state="RUNNING", start_time=start)
    (u,) = ex.poll([job])
    assert u.state == JobState.RUNNING and u.extra["pool"] == "north/a100-80gb/owned"
    rec.update(job_state="FAILED", end_time=start + 60, exit_code=2 << 8)
    ups = ex.poll([job])  # the job was never seen running: both steps, in order
    assert [x.state for x in ups] == [JobState.RUNNING, JobState.FAILED]
    assert ups[1].exit_code == 2 and ups[1].ended_at == NOW + timedelta(seconds=60)


def test_poll_falls_back_to_sacct_c_then_accounting(fake, store) -> None:
    cfg = config()
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)
    job = stored(store, ex, fake, squeue_job(1))
    fake.jobs["/etc/north/slurm.conf"].clear()  # purged from slurmctld's memory

    def sacct(argv, *, env, **kw):
        fake.calls.append((env["SLURM_CONF"], argv))
        if argv[0] == "squeue":
            return subprocess.CompletedProcess(argv, 0, '{"jobs": []}', "")
        t = int(NOW.timestamp())
        return subprocess.CompletedProcess(argv, 0, f"1|COMPLETED|gpu|{t}|{t + 5}|0:0\n", "")

    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=sacct)
    ups = ex.poll([job])
    assert [u.state for u in ups] == [JobState.RUNNING, JobState.SUCCEEDED]
    assert fake.calls[-1][1][:3] == ["sacct", "-c", "-P"]
    cfg = config(clusters={"north": {"slurm_conf": "/etc/north/slurm.conf",
                                     "accounting": True},
                           "central": {"slurm_conf": "/etc/central/slurm.conf"}})
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=sacct)
    assert [u.state for u in ex.poll([job])] == [JobState.RUNNING, JobState.SUCCEEDED]
    assert fake.calls[-1][1][:4] == ["sacct", "-D", "-X", "-P"]  # -D: requeued runs too


def apply_updates(store, job, updates, now: datetime):
    """Record what poll() reports at `now`, as the daemon does; the job after."""
    for u in updates:
        job = store.transition(job.id, u.state, reason=u.reason, actor="slurm",
                               updates=u.job_fields(), now=now)
    return job


def test_requeues_between_polls_and_a_lagging_accounting(fake, store) -> None:
    """What a real cluster shows only by chance (tests/integration/slurm/test_requeue.py runs
    the common cases): two runs requeued while the job was only planned, and slurmdbd not yet
    holding the record of a requeue the daemon saw."""
    rows: list[str] = []

    def run(argv, *, env, **kw):
        if argv[0] == "sacct":
            fake.calls.append((env["SLURM_CONF"], argv))
            return subprocess.CompletedProcess(argv, 0, "".join(rows), "")
        return fake(argv, env=env, **kw)

    cfg = config(clusters={"north": {"slurm_conf": "/etc/north/slurm.conf", "accounting": True},
                           "central": {"slurm_conf": "/etc/central/slurm.conf"}})
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=run)
    job = stored(store, ex, fake, squeue_job(1))
    store.transition(job.id, JobState.PLANNED, reason="plan 1", actor="daemon")
    job = store.get_job(job.id)
    t = int(job.updated_at.timestamp()) + 10
    rec = fake.jobs["/etc/north/slurm.conf"][0]
    # two runs ended by requeues while nobody polled; the third runs now
    rec.update(job_state="RUNNING", start_time=t + 200, restart_cnt=2)
    rows[:] = [f"1|REQUEUED|gpu|{t}|{t + 60}|0:0\n", f"1|NODE_FAIL|gpu|{t + 70}|{t + 90}|0:0\n",
               f"1|RUNNING|gpu|{t + 200}|Unknown|0:0\n"]
    ups = ex.poll([job])
    assert [(u.state, u.started_at and int(u.started_at.timestamp()),
             u.ended_at and int(u.ended_at.timestamp())) for u in ups] == [
        (JobState.RUNNING, t, None), (JobState.QUEUED, t, t + 60),
        (JobState.RUNNING, t + 70, None), (JobState.QUEUED, t + 70, t + 90),
        (JobState.RUNNING, t + 200, None)]
    assert ups[3].reason == "requeued by Slurm (NODE_FAIL)"
    job = apply_updates(store, job, ups, now=datetime.fromtimestamp(t + 300, UTC))
    assert [(a.started_at, a.ended_at, a.end_reported, a.pool) for a in store.attempts()] == [
        (datetime.fromtimestamp(t, UTC), datetime.fromtimestamp(t + 60, UTC), True,
         "north/a100-80gb/owned"),
        (datetime.fromtimestamp(t + 70, UTC), datetime.fromtimestamp(t + 90, UTC), True,
         "north/a100-80gb/owned")]
    assert ex.poll([job]) == []  # the same picture: nothing new, and no read of accounting
    assert sum(a[0] == "sacct" for _, a in fake.calls) == 1

    # requeued again: seen pending before slurmdbd has the record -> back in the queue now,
    # ended when seen; the record arriving later is not a second run
    rec.update(job_state="PENDING", start_time=t + 500, restart_cnt=3)
    (u,) = ex.poll([job])
    assert u.state == JobState.QUEUED and u.ended_at is None
    job = apply_updates(store, job, [u], now=datetime.fromtimestamp(t + 600, UTC))
    rows[2:] = [f"1|REQUEUED|gpu|{t + 200}|{t + 260}|0:0\n",
                "1|PENDING|gpu|Unknown|Unknown|0:0\n"]
    assert ex.poll([job]) == []
    fresh = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=run)  # a restarted daemon
    assert fresh.poll([job]) == []
    (a3,) = store.attempts()[2:]
    assert a3.started_at == datetime.fromtimestamp(t + 200, UTC) and not a3.end_reported


def test_a_finished_record_without_its_partition_keeps_the_pool_the_job_was_seen_in(
        fake, store) -> None:
    """slurmdbd writes a finished job's partition a few seconds after its end (seen on a real
    slurmdbd): the pool then stays the one the job was running in, not unknown."""
    cfg = config(clusters={"north": {"slurm_conf": "/etc/north/slurm.conf", "accounting": True},
                           "central": {"slurm_conf": "/etc/central/slurm.conf"}})
    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=fake)
    job = stored(store, ex, fake, squeue_job(1))
    job = store.transition(job.id, JobState.RUNNING, actor="daemon",
                           updates={"ran_pool": "north/a100-80gb/owned"})
    t = int(NOW.timestamp())

    def sacct(argv, *, env, **kw):
        if argv[0] == "squeue":
            return subprocess.CompletedProcess(argv, 0, '{"jobs": []}', "")
        return subprocess.CompletedProcess(argv, 0, f"1|FAILED||{t}|{t + 5}|2:0\n", "")

    ex = SlurmExecutor(cfg.executor.slurm, cfg.to_site(), run=sacct)
    (u,) = ex.poll([job])
    assert u.state == JobState.FAILED and u.exit_code == 2
    assert u.extra["pool"] == "north/a100-80gb/owned"


# -- config -----------------------------------------------------------------------------------


def test_make_executor_and_config_errors_name_the_key(tmp_path) -> None:
    assert isinstance(make_executor(config(), str(tmp_path / "s.db")), SlurmExecutor)
    from carbonplan.errors import InputError

    def err(data) -> InputError:
        with pytest.raises(InputError) as e:
            parse_config(data).to_site()
        return e.value

    base = config().model_dump(exclude={"source"})
    bad = json.loads(json.dumps(base, default=str))
    bad["executor"]["slurm"]["clusters"]["north"]["slurm_cnf"] = "x"
    e = err(bad)
    assert e.field == "config executor.slurm.clusters.north.slurm_cnf"
    assert "did you mean 'slurm_conf'" in e.reason
    bad = json.loads(json.dumps(base, default=str))
    bad["executor"]["slurm"]["gres"]["a40"] = "a40-48gb"
    assert err(bad).field == "config executor.slurm.gres.a40"
    bad = json.loads(json.dumps(base, default=str))
    bad["pools"][0]["labels"] = {"cluster": "south", "partition": "gpu"}
    e = err(bad)
    assert e.field == "config pools[0].labels.cluster" and "unknown cluster 'south'" in e.reason
    bad["pools"][0]["labels"] = {"cluster": "north"}
    assert err(bad).field == "config pools[0].labels.partition"
    bad = json.loads(json.dumps(base, default=str))
    bad["executor"]["slurm"]["start_margin"] = "soon"
    assert err(bad).field == "config executor.slurm.start_margin"
    assert err({"executor": {"kind": "slurm"}}).field == "config executor.slurm.clusters"


def test_jobspec_from_discovery_is_a_valid_submission(ex, fake) -> None:
    fake.jobs["/etc/north/slurm.conf"].append(squeue_job(9))
    (d,) = ex.discover()
    assert JobSpec.model_validate(d.spec.model_dump()).external_id == "north:9"
