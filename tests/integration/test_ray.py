"""The Ray executor on real local Ray clusters, one per region (scripts/services/ray.sh).

Each test plays the daemon (issue 7): it issues START through the exactly-once wrapper when a
job's planned slot arrives (slots of a few seconds), polls, and records what the executor reports.
Placements are explicit here; the planner (issue 4) will produce them.
Skips without CARBONPLAN_TEST_RAY_EU / _US (scripts/test starts both clusters).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbonplan.config import load_config
from carbonplan.domain import TERMINAL_STATES, Job, JobSpec, JobState, Placement
from carbonplan.executors import make_executor
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind
from carbonplan.executors.ray import RayExecutor, parse_ref, submission_id
from carbonplan.store import open_store
from carbonplan.store.repo import Store

pytestmark = pytest.mark.ray

EU_URL = os.environ.get("CARBONPLAN_TEST_RAY_EU")
US_URL = os.environ.get("CARBONPLAN_TEST_RAY_US")
STATE = os.environ.get("CARBONPLAN_TEST_RAY_STATE")
RAY_SH = Path(__file__).parents[2] / "scripts" / "services" / "ray.sh"
if not (EU_URL and US_URL):
    pytest.skip("no Ray clusters: set CARBONPLAN_TEST_RAY_EU and _US (scripts/test starts them)",
                allow_module_level=True)

SLOT = timedelta(seconds=4)  # the test's slot length
H = 1 / 3600  # one second, in hours
EU_SPOT, EU_MIG = "eu-north-1/a100-80gb/spot", "eu-north-1/a100-80gb:3g.40gb/owned"
US_OD, US_SPOT = "us-east-1/a100-80gb/on_demand", "us-east-1/a100-80gb/spot"
OFFLINE = "us-west-2/a100-80gb/on_demand"

# The job the tests run: it does WORK_S seconds of "training" in 0.1 s steps, saves a checkpoint
# every CKPT_EVERY_S seconds to CKPT (shared storage: both clusters run on this machine), resumes
# from it, and appends what it saw to EVENTS.
TRAIN = r'''
import json, os, sys, time
ckpt, events = os.environ["CKPT"], os.environ["EVENTS"]
work_s, every_s = float(os.environ["WORK_S"]), float(os.environ.get("CKPT_EVERY_S", "1e9"))
done = json.load(open(ckpt))["done_s"] if os.path.exists(ckpt) else 0.0
def event(**kw):
    with open(events, "a") as f:
        f.write(json.dumps({"t": time.time(), "attempt": os.environ["CARBONPLAN_ATTEMPT"],
                            "pool": os.environ["CARBONPLAN_POOL"], **kw}) + "\n")
event(kind="start", resumed_from=done, argv=sys.argv[1:],
      gpus=os.environ.get("CUDA_VISIBLE_DEVICES", ""), tag=os.environ.get("TAG"))
print("resumed from", done, "argv", sys.argv[1:], flush=True)
last = time.monotonic()
while done < work_s:
    time.sleep(0.1)
    done = min(done + 0.1, work_s)
    if time.monotonic() - last >= every_s:
        tmp = ckpt + ".tmp"
        json.dump({"done_s": done}, open(tmp, "w"))
        os.replace(tmp, ckpt)
        last = time.monotonic()
event(kind="done", done_s=done)
print("done", round(done, 1), flush=True)
'''


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, extra_clusters: dict[str, str] | None = None,
                 extra: str = "") -> Path:
    clusters = {"eu-north-1": EU_URL, "us-east-1": US_URL,
                "offline": f"http://127.0.0.1:{closed_port()}", **(extra_clusters or {})}
    lines = ['[site]\nname = "ray-it"\n', '[executor]\nkind = "ray"\n',
             '[executor.ray]\nlost_after = "0s"\nrequest_timeout_s = 10\n']
    lines += [f'[executor.ray.clusters.{n}]\naddress = "{a}"\n' for n, a in clusters.items()]
    pools = [("eu-north-1", "", "spot", ""), ("eu-north-1", "3g.40gb", "owned", ""),
             ("us-east-1", "", "on_demand", ""), ("us-east-1", "", "spot", ""),
             ("us-west-2", "", "on_demand", 'labels = { ray_cluster = "offline" }')]
    for region, mig, market, more in pools:
        lines.append(f'[[pools]]\nregion = "{region}"\naccelerator = "a100-80gb"\n'
                     + (f'mig = "{mig}"\n' if mig else "")
                     + f'market = "{market}"\ncapacity = 4\nprice_usd_per_unit_h = 2.0\n{more}\n')
    path.write_text("\n".join(lines) + extra)
    return path


def stop_leftovers(urls: Iterable[str]) -> None:
    """Stop carbonplan's jobs still running on the test clusters, so none outlives its test."""
    from ray.job_submission import JobSubmissionClient

    for url in urls:
        client = JobSubmissionClient(url)
        for j in client.list_jobs():
            if (j.submission_id or "").startswith("carbonplan-") and not j.status.is_terminal():
                client.stop_job(j.submission_id)


def highest_job_id_on(urls: Iterable[str]) -> int:
    from ray.job_submission import JobSubmissionClient

    ids = [int(j.submission_id.split("-")[1]) for url in urls
           for j in JobSubmissionClient(url).list_jobs()
           if (j.submission_id or "").startswith("carbonplan-")]
    return max(ids, default=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """One store for the module, so submission ids never repeat on the shared clusters (Ray's
    delete_job is not reliable right after a job ends: a deleted entry may come back)."""
    root = tmp_path_factory.mktemp("ray-it")
    cfg_path = write_config(root / "carbonplan.toml")
    store = open_store(str(root / "s.db"))
    # clusters reused from an earlier run (a developer's) keep its submission ids: skip past them
    skip = highest_job_id_on([EU_URL, US_URL])
    if skip:
        dummy = JobSpec(name="skip", user="u", project="p", command=["true"], hours=1,
                        deadline=datetime.now(UTC) + timedelta(hours=1))
        for j in store.add_jobs([dummy] * skip):
            store.cancel(j.id)
    yield store, cfg_path
    store.close()


@pytest.fixture
def site(world, tmp_path: Path):
    """The store, the executor for both clusters (and an offline one), and a workdir with TRAIN."""
    store, cfg_path = world
    wd = tmp_path / "work dir"
    wd.mkdir()
    (wd / "train.py").write_text(TRAIN)
    yield store, make_executor(load_config(cfg_path), store.url), wd, cfg_path
    stop_leftovers([EU_URL, US_URL])


def add(store: Store, wd: Path, name: str, work_s: float, *, gpus: int = 1, mig: str | None = None,
        every_s: float | None = None, cost_s: float = 0.0, deadline_s: float = 300,
        args: tuple[str, ...] = ()) -> Job:
    env = {"CKPT": str(wd.parent / f"{name}.ckpt"), "EVENTS": str(wd.parent / f"{name}.events"),
           "WORK_S": str(work_s), "TAG": name}
    if every_s:
        env["CKPT_EVERY_S"] = str(every_s)
    return store.add_job(JobSpec(
        name=name, user="u", project="p", command=["python", "train.py", *args], gpus=gpus,
        mig=mig, hours=work_s * H, deadline=datetime.now(UTC) + timedelta(seconds=deadline_s),
        checkpoint_every_h=every_s * H if every_s else None, checkpoint_cost_h=cost_s * H,
        workdir=str(wd), env=env))


def place(job: Job, pool: str, start: datetime) -> Placement:
    return Placement(job_id=job.id, pool=pool, start=start,
                     end=start + timedelta(hours=job.remaining_h), units=job.gpus,
                     energy_kwh=0.1, kg_co2e=0.01, cost_usd=0.1)


def start_action(store: Store, p: Placement, plan_id: int = 1) -> Action:
    job = store.get_job(p.job_id)
    return Action(ActionKind.START, job, p, attempt=job.attempt + 1, plan_id=plan_id)


def record(store: Store, ex: RayExecutor, jobs: Iterable[Job]) -> None:
    """What the daemon does with poll(): each update becomes one transition with its fields."""
    for u in ex.poll(list(jobs)):
        fields = {"started_at": u.started_at, "ended_at": u.ended_at, "exit_code": u.exit_code,
                  "done_h": u.done_h}
        store.transition(u.job_id, u.state, reason=u.reason, actor="daemon",
                         updates={k: v for k, v in fields.items() if v is not None})


def run_plan(store: Store, ex: RayExecutor, placements: list[Placement],
             until: frozenset[JobState] = TERMINAL_STATES, timeout_s: float = 180) -> list[Job]:
    """Play the daemon: START each job when its slot arrives, poll, until all reach `until`."""
    waiting = {p.job_id: p for p in placements}
    started: dict[int, datetime] = {}
    give_up = time.monotonic() + timeout_s
    while True:
        now = datetime.now(UTC)
        due = [p for p in waiting.values() if p.start <= now]
        for out in apply_actions(store, ex, [start_action(store, p) for p in due]):
            assert out.result.ok, out.result.detail
            started[out.action.job.id] = now
            del waiting[out.action.job.id]
        record(store, ex, [store.get_job(i) for i in started])
        jobs = [store.get_job(p.job_id) for p in placements]
        for j in jobs:  # back in the queue after its start: say why at once
            assert j.id not in started or j.state != JobState.QUEUED or j.state in until, \
                store.events(j.id)[-1].reason
        if not waiting and all(j.state in until for j in jobs):
            return jobs
        assert time.monotonic() < give_up, [(j.id, j.state.value) for j in jobs]
        time.sleep(0.2)


def events(wd: Path, name: str) -> list[dict[str, Any]]:
    path = wd.parent / f"{name}.events"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout_s: float = 60, what: str = "") -> None:
    give_up = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.1)


def supervisor_resources(url: str, sid: str) -> dict[str, float]:
    """The resources Ray reserved for a job's entrypoint (its supervisor actor)."""
    from ray.util.state import list_actors

    actors = list_actors(address=url, detail=True, limit=1000,
                         filters=[("name", "=", f"_ray_internal_job_actor_{sid}")])
    assert len(actors) == 1, f"{len(actors)} supervisors for {sid}"
    return dict(actors[0].required_resources)


# -- tests -------------------------------------------------------------------------------------


def test_jobs_run_at_their_slot_on_the_cluster_of_their_region(site, cli, monkeypatch) -> None:
    store, ex, wd, cfg_path = site
    t0 = datetime.now(UTC) + timedelta(seconds=2)
    a = add(store, wd, "a", 1, gpus=2, args=("--name", "a b; echo pwned", "$(id)"))
    b = add(store, wd, "b", 1)
    c = add(store, wd, "c", 1, mig="3g.40gb")
    d = add(store, wd, "d", 1)
    plan = [place(a, EU_SPOT, t0), place(b, US_OD, t0 + SLOT), place(c, EU_MIG, t0 + SLOT),
            place(d, US_SPOT, t0 + 2 * SLOT)]
    jobs = run_plan(store, ex, plan)

    urls = {"eu-north-1": EU_URL, "us-east-1": US_URL}
    expect = {  # cluster, entrypoint resources reserved on it
        a.id: ("eu-north-1", {"GPU": 2.0, "region:eu-north-1": 1.0, "spot": 1.0}),
        b.id: ("us-east-1", {"GPU": 1.0, "region:us-east-1": 1.0, "on_demand": 1.0}),
        c.id: ("eu-north-1", {"mig:3g.40gb": 1.0, "region:eu-north-1": 1.0, "owned": 1.0}),
        d.id: ("us-east-1", {"GPU": 1.0, "region:us-east-1": 1.0, "spot": 1.0}),
    }
    from ray.job_submission import JobSubmissionClient

    for job, p in zip(jobs, plan, strict=True):
        assert job.state == JobState.SUCCEEDED and job.exit_code == 0, job
        assert job.ran_pool == p.pool and job.attempt == 1
        cluster, sid = parse_ref(job.executor_ref)
        assert (cluster, sid) == (expect[job.id][0], submission_id(job.id, 1))
        info = JobSubmissionClient(urls[cluster]).get_job_info(sid)
        assert info.metadata["carbonplan_pool"] == p.pool
        assert info.metadata["carbonplan_start"] == p.start.isoformat()
        assert info.metadata["carbonplan_plan"] == "1"
        assert supervisor_resources(urls[cluster], sid) == expect[job.id][1]
        (begin, end) = events(wd, job.name)
        assert begin["t"] >= p.start.timestamp()  # not before its slot
        assert begin["pool"] == p.pool and begin["tag"] == job.name
        assert len(begin["gpus"].split(",")) == job.gpus if not job.mig else begin["gpus"] == ""
        assert end["kind"] == "done"
    # every argument reached the program as typed: the entrypoint is quoted, not shell-split
    assert events(wd, "a")[0]["argv"] == ["--name", "a b; echo pwned", "$(id)"]
    assert "resumed from 0.0" in ex.logs(jobs[0])
    monkeypatch.setenv("CARBONPLAN_CONFIG", str(cfg_path))
    r = cli("logs", str(a.id), "--db", store.url, "--tail", "1")
    assert r.code == 0 and r.out.strip() == "done 1.0", r.err


def test_a_spot_loss_resumes_from_its_checkpoint_on_the_other_cluster(site) -> None:
    store, ex, wd, _ = site
    # 12 s of work, a checkpoint every 2 s; carbonplan is told a checkpoint costs 0.5 s, which
    # the program does not spend: the credit must then never exceed what it really saved
    job = add(store, wd, "spot", 12, every_s=2, cost_s=0.5, deadline_s=120)
    apply_actions(store, ex, [start_action(store, place(job, EU_SPOT, datetime.now(UTC)))])
    ckpt = wd.parent / "spot.ckpt"

    def saved_s() -> float:
        return json.loads(ckpt.read_text())["done_s"] if ckpt.exists() else 0.0

    def until_saved() -> bool:
        record(store, ex, [store.get_job(job.id)])
        return saved_s() >= 6

    wait_for(until_saved, what="3 checkpoints")
    assert store.get_job(job.id).state == JobState.RUNNING
    # the spot node goes away: Ray stops the job behind carbonplan's back
    from ray.job_submission import JobSubmissionClient

    sid = submission_id(job.id, 1)
    JobSubmissionClient(EU_URL).stop_job(sid)
    wait_for(lambda: (record(store, ex, [store.get_job(job.id)]),
                      store.get_job(job.id).state)[1] == JobState.QUEUED, what="requeue")
    lost = store.get_job(job.id)
    assert "stopped outside carbonplan" in store.events(job.id)[-1].reason
    # the run is kept as an interrupted attempt (for the report), no longer the job's own
    assert lost.attempt == 1 and lost.started_at is None and lost.ended_at is None
    (run,) = store.attempts([job.id])
    assert (run.attempt, run.pool, run.end_reported) == (1, EU_SPOT, True)
    assert run.done_h == lost.done_h and "stopped outside carbonplan" in run.reason
    assert 6 <= run.hours * 3600 <= 60  # seconds: it ran past 3 checkpoints, then stopped
    # credit: whole checkpoints only, at least one, never more than the program saved
    n = round(lost.done_h / (2 * H))
    assert n >= 1 and lost.done_h == pytest.approx(n * 2 * H)
    assert lost.done_h <= saved_s() * H + 1e-12
    assert lost.remaining_h == pytest.approx(12 * H - lost.done_h)

    # re-planned on the other cluster for its remaining work, before its deadline
    (done,) = run_plan(store, ex, [place(lost, US_OD, datetime.now(UTC))])
    assert done.state == JobState.SUCCEEDED and done.attempt == 2
    assert done.ran_pool == US_OD and done.executor_ref == f"us-east-1:{submission_id(job.id, 2)}"
    assert done.ended_at <= done.deadline
    starts = [e for e in events(wd, "spot") if e["kind"] == "start"]
    assert [(e["attempt"], e["pool"]) for e in starts] == [("1", EU_SPOT), ("2", US_OD)]
    assert starts[1]["resumed_from"] >= lost.done_h / H - 1e-9  # resumed, not restarted
    assert done.started_at >= run.ended_at and len(store.attempts([job.id])) == 1
    assert JobSubmissionClient(EU_URL).get_job_status(sid).value == "STOPPED"


def test_a_crash_between_submit_and_record_runs_the_job_once(site, tmp_path: Path) -> None:
    store, ex, wd, cfg_path = site
    job = add(store, wd, "once", 2)
    a = start_action(store, place(job, US_OD, datetime.now(UTC)))
    store.begin_action(key=a.key, job_id=job.id, kind="start", executor="ray", attempt=1)
    assert ex.apply(a).ok  # submitted ... and the daemon dies before recording it
    assert store.get_job(job.id).state == JobState.QUEUED
    restarted = make_executor(load_config(cfg_path), store.url)  # a fresh daemon process
    (out,) = apply_actions(store, restarted, [a])
    assert out.result.ok and not out.skipped and "already submitted" in out.result.detail
    wait_for(lambda: (record(store, restarted, [store.get_job(job.id)]),
                      store.get_job(job.id).state)[1] == JobState.SUCCEEDED, what="success")
    from ray.job_submission import JobSubmissionClient

    on_ray = [j.submission_id for url in (EU_URL, US_URL)
              for j in JobSubmissionClient(url).list_jobs()
              if (j.submission_id or "").startswith(f"carbonplan-{job.id}-")]
    assert on_ray == [submission_id(job.id, 1)]
    assert [e["kind"] for e in events(wd, "once")] == ["start", "done"]  # it ran once
    assert [r.state for r in store.actions(job_id=job.id)] == ["done"]


def test_an_unreachable_cluster_fails_retryably_and_the_job_runs_elsewhere(site) -> None:
    store, ex, wd, _ = site
    job = add(store, wd, "elsewhere", 1)
    (out,) = apply_actions(store, ex, [start_action(store, place(job, OFFLINE,
                                                                 datetime.now(UTC)))],
                           delays=(0.1,))
    assert not out.result.ok and out.result.retryable
    assert out.result.detail.startswith("Ray cluster offline (http://127.0.0.1:")
    assert "is unreachable" in out.result.detail
    assert store.get_job(job.id).state == JobState.QUEUED
    assert [r.state for r in store.actions(job_id=job.id)] == ["failed"]
    # the daemon re-plans it on another pool; the same attempt now starts there
    (done,) = run_plan(store, ex, [place(store.get_job(job.id), EU_SPOT, datetime.now(UTC))])
    assert done.state == JobState.SUCCEEDED and done.executor_ref.startswith("eu-north-1:")


def test_a_partitioned_cluster_stops_the_attempt_carbonplan_gave_up_on(site,
                                                                        tmp_path: Path) -> None:
    """Cut off, not dead: the EU cluster keeps running attempt 1 while carbonplan, unable to
    reach it, re-runs the job in the US; when the EU answers again attempt 1 is stopped."""
    from ray.job_submission import JobSubmissionClient

    store, ex, wd, cfg_path = site
    job = add(store, wd, "partitioned", 60)
    run_plan(store, ex, [place(job, EU_SPOT, datetime.now(UTC))],
             until=frozenset({JobState.RUNNING}))
    # the same site seen from the other side of a partition: EU's address leads nowhere
    cut = make_executor(load_config(write_config(
        tmp_path / "cut.toml", {"eu-north-1": f"http://127.0.0.1:{closed_port()}"})), store.url)
    wait_for(lambda: (record(store, cut, [store.get_job(job.id)]),
                      store.get_job(job.id).state)[1] == JobState.QUEUED, what="lost")
    (again,) = run_plan(store, cut, [place(store.get_job(job.id), US_OD, datetime.now(UTC))],
                        until=frozenset({JobState.RUNNING}))
    assert again.attempt == 2
    eu, us = JobSubmissionClient(EU_URL), JobSubmissionClient(US_URL)
    first, second = submission_id(job.id, 1), submission_id(job.id, 2)
    assert eu.get_job_status(first).value == "RUNNING"  # twice at once, for now
    # the partition heals (a restarted daemon sees the same): attempt 1 is stopped, 2 goes on
    healed = make_executor(load_config(cfg_path), store.url)
    record(store, healed, [store.get_job(job.id)])
    wait_for(lambda: eu.get_job_status(first).value == "STOPPED", what="attempt 1 stopped")
    assert us.get_job_status(second).value == "RUNNING"
    assert store.get_job(job.id).state == JobState.RUNNING


def test_cancel_stops_the_ray_job(site) -> None:
    store, ex, wd, _ = site
    job = add(store, wd, "cancelled", 120)
    (running,) = run_plan(store, ex, [place(job, US_SPOT, datetime.now(UTC))],
                          until=frozenset({JobState.RUNNING}))
    store.cancel(job.id)
    (out,) = apply_actions(store, ex, [Action(ActionKind.CANCEL, store.get_job(job.id))])
    assert out.result.ok and out.result.detail == "stop requested"
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(US_URL)
    wait_for(lambda: client.get_job_status(submission_id(job.id, 1)).value == "STOPPED",
             what="stopped")
    assert ex.poll([store.get_job(job.id)]) == []  # cancelled stays cancelled


@pytest.mark.slow
def test_a_job_whose_resources_no_node_has_returns_to_the_queue(site, tmp_path: Path) -> None:
    """Ray fails it after RAY_JOB_START_TIMEOUT_SECONDS (ray.sh sets 15 s); it never ran."""
    store, _, wd, _ = site
    cfg = write_config(tmp_path / "odd.toml", extra='[executor.ray.pools."us-east-1/a100-80gb/'
                       'spot"]\nresources = { "no-such-node" = 1 }\n')
    ex = make_executor(load_config(cfg), store.url)
    job = add(store, wd, "unplaceable", 1)
    apply_actions(store, ex, [start_action(store, place(job, US_SPOT, datetime.now(UTC)))])
    wait_for(lambda: (record(store, ex, [store.get_job(job.id)]),
                      store.get_job(job.id).state)[1] == JobState.QUEUED, timeout_s=120,
             what="start timeout")
    assert "JOB_SUPERVISOR_ACTOR_START_TIMEOUT" in store.events(job.id)[-1].reason
    assert store.get_job(job.id).done_h == 0 and events(wd, "unplaceable") == []


@pytest.mark.slow
def test_a_lost_cluster_sends_its_jobs_back_to_the_queue(site, tmp_path: Path) -> None:
    """A third cluster (a spot region) dies with a job on it; the job resumes on another one."""
    if not STATE or not shutil.which("ray"):
        pytest.skip("needs CARBONPLAN_TEST_RAY_STATE and ray on PATH")
    store, _, wd, _ = site
    name = "eu-west-1"
    up = subprocess.run([str(RAY_SH), "head", STATE, name,
                         '{"region:eu-west-1": 1000, "spot": 1000}'],
                        check=True, capture_output=True, text=True)
    try:
        url = re.search(r"up: (http://\S+)", up.stdout).group(1)
        cfg = write_config(tmp_path / "three.toml", {name: url},
                           extra='[[pools]]\nregion = "eu-west-1"\naccelerator = "a100-80gb"\n'
                                 'market = "spot"\ncapacity = 4\nprice_usd_per_unit_h = 2.0\n')
        ex = make_executor(load_config(cfg), store.url)
        job = add(store, wd, "doomed", 10, every_s=1, cost_s=0.5, deadline_s=150)
        apply_actions(store, ex, [start_action(store, place(job, "eu-west-1/a100-80gb/spot",
                                                            datetime.now(UTC)))])
        ckpt = wd.parent / "doomed.ckpt"

        def until_saved() -> bool:
            record(store, ex, [store.get_job(job.id)])
            return ckpt.exists() and json.loads(ckpt.read_text())["done_s"] >= 3

        wait_for(until_saved, what="3 checkpoints")
        subprocess.run([str(RAY_SH), "stop", STATE, name], check=True)  # the region is gone
        wait_for(lambda: (record(store, ex, [store.get_job(job.id)]),
                          store.get_job(job.id).state)[1] == JobState.QUEUED, what="requeue")
    finally:
        subprocess.run([str(RAY_SH), "stop", STATE, name], check=True)
    lost = store.get_job(job.id)
    assert f"Ray cluster {name}" in store.events(job.id)[-1].reason
    assert lost.done_h >= 1 * H  # credited up to when it was last seen running
    assert lost.done_h <= json.loads(ckpt.read_text())["done_s"] * H + 1e-12
    (done,) = run_plan(store, ex, [place(lost, US_OD, datetime.now(UTC))])
    assert done.state == JobState.SUCCEEDED and done.attempt == 2
    assert events(wd, "doomed")[-2]["resumed_from"] > 0


def test_the_daemon_plans_runs_and_recovers_a_spot_loss(site) -> None:
    """Planned by the real planner inside the daemon: jobs wait for the clean window and run on
    the cluster of the clean region; a spot loss comes back with its checkpointed work and is
    re-planned, by the daemon, onto the other cluster, finishing before its deadline."""
    from carbonplan.daemon import Daemon, DaemonSettings
    from carbonplan.domain import ACTIVE_STATES
    from carbonplan.leadership import lease_for
    from carbonplan.signals.scripted import FunctionSignals

    store, ex, wd, cfg_path = site
    for j in store.list_jobs(states=ACTIVE_STATES):  # leftovers of earlier tests in the module
        store.cancel(j.id)
    opens = datetime.now(UTC) + timedelta(seconds=12)
    clean = {"zone": "SE", "from": opens}  # eu-north-1's zone is clean from `opens`

    def weather(zone: str, t: datetime) -> float:
        return 20.0 if zone == clean["zone"] and t >= clean["from"] else 900.0

    a = add(store, wd, "planned-a", 4, deadline_s=240)
    b = add(store, wd, "planned-b", 12, every_s=2, cost_s=0.5, deadline_s=240)
    d = Daemon(store, load_config(cfg_path).to_site(), ex, FunctionSignals(weather),
               # costs of seconds-long jobs are fractions of a cent: a gap at their scale
               settings=DaemonSettings(interval_s=1, freeze_window_s=4, slot_h=4 * H,
                                       horizon_h=0.1, time_limit_s=5, rel_gap=1e-6,
                                       move_penalty_usd=1e-7, start_grace_s=60),
               lease=lease_for(store.engine))
    d.run_once()
    placed = {p.job_id: p for p in store.get_plan()[1].placements}
    assert placed[a.id].pool == EU_SPOT and placed[b.id].pool == EU_SPOT
    assert placed[a.id].start >= opens - timedelta(seconds=1)
    ckpt = wd.parent / "planned-b.ckpt"

    def cycle_until(pred, what: str, timeout_s: float = 120) -> None:
        def step() -> bool:
            d.run_once()
            return pred()
        wait_for(step, timeout_s=timeout_s, what=what)

    cycle_until(lambda: ckpt.exists() and json.loads(ckpt.read_text())["done_s"] >= 4,
                "two checkpoints of planned-b")
    # the spot capacity is reclaimed, and meanwhile us-east-1's grid becomes the clean one
    from ray.job_submission import JobSubmissionClient

    clean.update(zone="US-MIDA-PJM", **{"from": datetime.now(UTC)})
    JobSubmissionClient(EU_URL).stop_job(submission_id(b.id, 1))
    cycle_until(lambda: all(store.get_job(j.id).state in TERMINAL_STATES for j in (a, b)),
                "both jobs to finish", timeout_s=180)
    done_a, done_b = store.get_job(a.id), store.get_job(b.id)
    assert done_a.state == JobState.SUCCEEDED and done_a.ran_pool == EU_SPOT
    assert done_b.state == JobState.SUCCEEDED and done_b.attempt == 2
    assert done_b.ran_pool in (US_OD, US_SPOT) and done_b.ended_at <= done_b.deadline
    starts = [e for e in events(wd, "planned-b") if e["kind"] == "start"]
    assert [e["attempt"] for e in starts] == ["1", "2"]
    assert starts[1]["resumed_from"] >= 2  # resumed from a checkpoint, not from the start
    first = [e for e in events(wd, "planned-a") if e["kind"] == "start"][0]
    assert first["pool"] == EU_SPOT
