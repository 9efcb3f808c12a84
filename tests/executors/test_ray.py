"""The Ray executor's translation (entrypoint, resources, statuses, checkpoint credit) without a
cluster: a fake Jobs API client stands in for Ray. tests/integration/test_ray.py runs real Ray."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from carbonplan.config import RayPoolEntry, parse_config
from carbonplan.domain import Job, JobSpec, JobState, Placement
from carbonplan.energy.formulas import checkpointed_h
from carbonplan.errors import InputError
from carbonplan.executors import make_executor
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind
from carbonplan.executors.ray import RayExecutor, entrypoint, resource_shape, runtime_env
from carbonplan.store import open_store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).parents[2] / "examples"

CONFIG = {
    "site": {"name": "test-site"},
    "executor": {"kind": "ray", "ray": {
        "lost_after": "5m",
        "clusters": {"eu-north-1": {"address": "http://eu:8265"},
                     "us-east-1": {"address": "http://us:8265"},
                     "far": {"address": "http://far:8265"}},
        "pools": {"us-east-1/a100-80gb:3g.40gb/owned": {"num_cpus": 1}}}},
    "pools": [
        {"region": "eu-north-1", "accelerator": "l4", "market": "spot", "capacity": 4},
        {"region": "us-east-1", "accelerator": "a100-80gb", "market": "on_demand",
         "capacity": 4},
        {"region": "us-east-1", "accelerator": "a100-80gb", "mig": "3g.40gb", "market": "owned",
         "capacity": 2},
        {"region": "us-west-2", "accelerator": "l4", "market": "spot", "capacity": 2,
         "labels": {"ray_cluster": "far"}},
    ],
}
EU, US, MIG, FAR = ("eu-north-1/l4/spot", "us-east-1/a100-80gb/on_demand",
                    "us-east-1/a100-80gb:3g.40gb/owned", "us-west-2/l4/spot")


class Status(Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    def is_terminal(self) -> bool:
        return self.value in ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass
class Info:
    status: Status
    metadata: dict[str, str] = field(default_factory=dict)
    message: str = ""
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    driver_exit_code: int | None = None
    submission_id: str | None = None


class FakeCluster:
    """The Jobs API of one cluster, as JobSubmissionClient reports it (errors included)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Info] = {}
        self.submits: list[dict[str, Any]] = []
        self.up = True

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("Failed to connect to Ray at address: http://x.")

    def get_job_info(self, sid: str) -> Info:
        self._check()
        if sid not in self.jobs:
            raise RuntimeError(f"Request failed with status code 404: Job {sid} does not exist.")
        return self.jobs[sid]

    def submit_job(self, **kw: Any) -> str:
        self._check()
        sid = kw["submission_id"]
        if sid in self.jobs:
            raise RuntimeError("Request failed with status code 500: Traceback ...\nValueError: "
                               f"Job with submission_id {sid} already exists.\n.")
        self.submits.append(kw)
        self.jobs[sid] = Info(Status.PENDING, metadata=kw["metadata"])
        return sid

    def list_jobs(self) -> list[Info]:
        self._check()
        for sid, info in self.jobs.items():
            info.submission_id = sid
        return list(self.jobs.values())

    def stop_job(self, sid: str) -> bool:
        self._check()
        info = self.get_job_info(sid)
        info.status = Status.STOPPED
        return True

    def get_job_logs(self, sid: str) -> str:
        self._check()
        self.get_job_info(sid)
        return "one\ntwo\nthree\n"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fakes() -> dict[str, FakeCluster]:
    return {"eu-north-1": FakeCluster(), "us-east-1": FakeCluster(), "far": FakeCluster()}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ex(fakes, clock) -> RayExecutor:
    cfg = parse_config(CONFIG)
    ray = cfg.executor.ray
    by_address = {c.address: fakes[n] for n, c in ray.clusters.items()}
    return RayExecutor({n: c.address for n, c in ray.clusters.items()}, cfg.to_site(),
                       cluster_of=ray.cluster_of, overrides=ray.pools,
                       lost_after=timedelta(minutes=5), site_name="test-site",
                       client_factory=lambda address: by_address[address], clock=clock)


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(str(tmp_path / "s.db"))
    yield s
    s.close()


def spec(**kw: Any) -> JobSpec:
    base: dict[str, Any] = dict(name="t", user="u", project="p", command=["python", "train.py"],
                                hours=2, deadline=NOW + timedelta(hours=8))
    return JobSpec(**{**base, **kw})


def job(**kw: Any) -> Job:
    fields = dict(id=7, state=JobState.QUEUED, submitted_at=NOW, updated_at=NOW)
    return Job(**{**spec().model_dump(), **fields, **kw})


def start(j: Job, pool: str, attempt: int = 1) -> Action:
    p = Placement(job_id=j.id, pool=pool, start=NOW, end=NOW + timedelta(hours=2), units=1,
                  energy_kwh=1, kg_co2e=0.1, cost_usd=1)
    return Action(ActionKind.START, j, p, attempt=attempt, plan_id=3)


# -- translation -------------------------------------------------------------------------------


def test_entrypoint_quotes_every_argument() -> None:
    argv = ["python", "train.py", "--name", "a b; rm -rf ~", "$(whoami)", "it's"]
    assert shlex.split(entrypoint(job(command=argv))) == argv


def test_a_batch_script_runs_only_from_inside_its_workdir(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    inside = job(command=None, script=str(tmp_path / "jobs" / "x y.sbatch"), workdir=str(tmp_path))
    assert shlex.split(entrypoint(inside)) == ["bash", "jobs/x y.sbatch"]
    with pytest.raises(ValueError, match="not inside the job's workdir"):
        entrypoint(job(command=None, script="/elsewhere/run.sbatch", workdir=str(tmp_path)))


def test_resource_shapes_follow_region_market_and_mig(ex: RayExecutor) -> None:
    eu = resource_shape(ex.pools[EU], 2)
    assert eu.num_gpus == 2 and eu.resources == {"region:eu-north-1": 1, "spot": 1}
    mig = resource_shape(ex.pools[MIG], 2, ex.overrides.get(MIG))
    assert mig.num_gpus == 0 and mig.num_cpus == 1
    assert mig.resources == {"region:us-east-1": 1, "owned": 1, "mig:3g.40gb": 2}
    own = resource_shape(ex.pools[US], 1, RayPoolEntry(resources={"zone-a": 1}))
    assert own.resources == {"zone-a": 1} and own.num_gpus == 1


def test_runtime_env_carries_workdir_env_and_identity() -> None:
    env = runtime_env(job(env={"SEED": "1"}, workdir="/data/proj"), 2, EU)
    assert env == {"working_dir": "/data/proj", "env_vars": {
        "SEED": "1", "CARBONPLAN_JOB_ID": "7", "CARBONPLAN_ATTEMPT": "2", "CARBONPLAN_POOL": EU}}


def test_start_submits_once_with_its_placement(ex, fakes, store, tmp_path: Path) -> None:
    j = store.add_job(spec(workdir=str(tmp_path), env={"K": "v"}, gpus=2))
    (out,) = apply_actions(store, ex, [start(j, EU)])
    assert out.result.ok and out.result.ref == f"eu-north-1:carbonplan-{j.id}-1"
    (sub,) = fakes["eu-north-1"].submits
    assert sub["submission_id"] == f"carbonplan-{j.id}-1"
    assert sub["entrypoint_num_gpus"] == 2
    assert sub["entrypoint_resources"] == {"region:eu-north-1": 1, "spot": 1}
    assert sub["runtime_env"]["working_dir"] == str(tmp_path)
    assert sub["metadata"] == {
        "carbonplan_site": "test-site", "carbonplan_job": str(j.id), "carbonplan_attempt": "1",
        "carbonplan_submitted": j.submitted_at.isoformat(),
        "carbonplan_pool": EU, "carbonplan_cluster": "eu-north-1", "carbonplan_plan": "3",
        "carbonplan_start": NOW.isoformat(), "carbonplan_end": (NOW + timedelta(hours=2))
        .isoformat()}
    stored = store.get_job(j.id)
    assert stored.state == JobState.SUBMITTED and stored.executor == "ray"
    assert stored.ran_pool == EU and stored.attempt == 1
    # the same attempt again (a crash before the result was recorded) adopts the submission
    again = ex.apply(start(j, EU))
    assert again.ok and "already submitted" in again.detail
    assert len(fakes["eu-north-1"].submits) == 1


def test_a_submission_id_of_another_job_is_not_adopted(ex, fakes) -> None:
    """Another site, or this one before its store was reset, used the same id."""
    mine = {"carbonplan_site": "test-site", "carbonplan_submitted": NOW.isoformat()}
    for other in ({**mine, "carbonplan_site": "other"},
                  {**mine, "carbonplan_submitted": (NOW - timedelta(days=1)).isoformat()}, {}):
        fakes["eu-north-1"].jobs["carbonplan-7-1"] = Info(Status.RUNNING, metadata=other)
        res = ex.apply(start(job(), EU))
        assert not res.ok and not res.retryable and "from another job" in res.detail
    fakes["eu-north-1"].jobs["carbonplan-7-1"] = Info(Status.RUNNING, metadata=mine)
    assert ex.apply(start(job(), EU)).ok


def test_an_unreachable_cluster_is_a_retryable_failure_naming_it(ex, fakes, store) -> None:
    fakes["far"].up = False
    j = store.add_job(spec())
    (out,) = apply_actions(store, ex, [start(j, FAR)], sleep=lambda s: None)
    assert not out.result.ok and out.result.retryable
    assert "Ray cluster far (http://far:8265) is unreachable" in out.result.detail
    assert store.get_job(j.id).state == JobState.QUEUED
    (out,) = apply_actions(store, ex, [start(j, US)])  # re-planned elsewhere: same attempt
    assert out.result.ok and store.get_job(j.id).executor_ref.startswith("us-east-1:")


def test_bad_starts_fail_without_retry(ex, tmp_path: Path) -> None:
    res = ex.apply(start(job(workdir=str(tmp_path / "missing")), EU))
    assert not res.ok and not res.retryable and "is not a directory" in res.detail
    res = ex.apply(start(job(), "nowhere/l4/spot"))
    assert not res.ok and "unknown pool" in res.detail


# -- status ------------------------------------------------------------------------------------


def running(ex: RayExecutor, fakes, pool: str = EU, **kw: Any) -> Job:
    cluster = ex._cluster_of(ex.pools[pool])
    sid = "carbonplan-7-1"
    fakes[cluster].jobs[sid] = Info(Status.RUNNING)
    return job(state=JobState.RUNNING, executor="ray", executor_ref=f"{cluster}:{sid}",
               ran_pool=pool, attempt=1, started_at=NOW, **kw)


@pytest.mark.parametrize("status,error,code,state", [
    (Status.SUCCEEDED, None, 0, JobState.SUCCEEDED),
    (Status.FAILED, "JOB_ENTRYPOINT_COMMAND_ERROR", 3, JobState.FAILED),
    (Status.FAILED, "RUNTIME_ENV_SETUP_FAILURE", None, JobState.FAILED),
    (Status.FAILED, "JOB_SUPERVISOR_ACTOR_DIED", None, JobState.QUEUED),
    (Status.FAILED, "JOB_SUPERVISOR_ACTOR_START_TIMEOUT", None, JobState.QUEUED),
    (Status.STOPPED, None, None, JobState.QUEUED),
])
def test_ray_statuses_map_to_job_states(ex, fakes, clock, status, error, code, state) -> None:
    j = running(ex, fakes)
    end_ms = int((NOW + timedelta(minutes=30)).timestamp() * 1000)
    fakes["eu-north-1"].jobs["carbonplan-7-1"] = Info(status, error_type=error, end_time=end_ms,
                                                      driver_exit_code=code, message="m")
    (u,) = ex.poll([j])
    assert u.state == state and u.ended_at == NOW + timedelta(minutes=30)
    if state != JobState.QUEUED:
        assert u.exit_code == code
    assert ex.poll([j.model_copy(update={"state": JobState.CANCELLED})]) == []


def test_submitted_becomes_running_when_seen_running(ex, fakes, clock) -> None:
    j = running(ex, fakes).model_copy(update={"state": JobState.SUBMITTED, "started_at": None})
    fakes["eu-north-1"].jobs["carbonplan-7-1"].status = Status.PENDING
    assert ex.poll([j]) == []
    fakes["eu-north-1"].jobs["carbonplan-7-1"].status = Status.RUNNING
    clock.now = NOW + timedelta(seconds=5)
    (u,) = ex.poll([j])
    assert u.state == JobState.RUNNING and u.started_at == clock.now


def test_checkpoint_formula() -> None:
    # every 1 h, 0.1 h to write: checkpoints complete at 1.1, 2.2, 3.3 h of run time
    assert checkpointed_h(3.2, 1.0, 0.1, 1.0, resumed=False) == 2.0
    assert checkpointed_h(3.3, 1.0, 0.1, 1.0, resumed=False) == 3.0
    # a resumed run restores first (0.1 h), so the third checkpoint completes at 3.4 h
    assert checkpointed_h(3.3, 1.0, 0.1, 1.0, resumed=True) == 2.0
    assert checkpointed_h(0.05, 1.0, 0.1, 1.0, resumed=True) == 0.0
    # on a GPU half as fast as the reference, an hour of run time is half a reference hour
    assert checkpointed_h(2.0, 1.0, 0.0, 0.5, resumed=False) == 1.0


def test_a_stopped_job_keeps_the_work_of_its_checkpoints(ex, fakes) -> None:
    # L4 speed relative to the reference A100-80GB, from the catalog
    speed = ex.site.accelerators["l4"].speed
    j = running(ex, fakes, checkpoint_every_h=0.5, hours=20)
    end_ms = int((NOW + timedelta(hours=1.6)).timestamp() * 1000)
    fakes["eu-north-1"].jobs["carbonplan-7-1"] = Info(Status.STOPPED, end_time=end_ms)
    (u,) = ex.poll([j])
    assert u.state == JobState.QUEUED and "stopped outside carbonplan" in u.reason
    assert u.done_h == pytest.approx(3 * 0.5 * speed)  # checkpoints at 0.5, 1.0, 1.5 h
    # without checkpoints nothing is saved; progress saved before is kept
    plain = running(ex, fakes, done_h=0.25)
    fakes["eu-north-1"].jobs["carbonplan-7-1"] = Info(Status.STOPPED, end_time=end_ms)
    assert ex.poll([plain])[0].done_h == 0.25


def test_a_silent_cluster_loses_its_jobs_after_lost_after(ex, fakes, clock) -> None:
    j = running(ex, fakes, checkpoint_every_h=0.25)
    clock.now = NOW + timedelta(hours=1)
    assert ex.poll([j]) == []  # still running: seen at 1 h
    fakes["eu-north-1"].up = False
    clock.now = NOW + timedelta(hours=1, minutes=1)
    assert ex.poll([j]) == []  # silent for less than lost_after
    clock.now = NOW + timedelta(hours=1, minutes=6)
    (u,) = ex.poll([j])
    assert u.state == JobState.QUEUED and "eu-north-1" in u.reason and "unreachable" in u.reason
    # credit up to the last time it was seen running (1 h): 4 checkpoints of 0.25 h
    assert u.done_h == pytest.approx(1.0 * ex.site.accelerators["l4"].speed)


def test_a_silent_cluster_is_asked_once_per_poll(ex, fakes, clock) -> None:
    calls = []
    fakes["eu-north-1"].up = False
    real = fakes["eu-north-1"].get_job_info
    fakes["eu-north-1"].get_job_info = lambda sid: (calls.append(sid), real(sid))[1]
    jobs = [running(ex, fakes).model_copy(update={"id": i, "executor_ref": f"eu-north-1:c-{i}"})
            for i in range(3)]
    assert ex.poll(jobs) == [] and len(calls) == 1
    clock.now = NOW + timedelta(minutes=6)
    assert [u.state for u in ex.poll(jobs)] == [JobState.QUEUED] * 3
    assert len(calls) == 2


def test_an_attempt_given_up_on_is_stopped_when_its_cluster_answers_again(ex, fakes,
                                                                          clock) -> None:
    """A partition, not a death: the cluster comes back with the lost attempt still running."""
    mine = {"carbonplan_site": "test-site"}
    j = running(ex, fakes)
    eu = fakes["eu-north-1"]
    eu.jobs["carbonplan-7-1"].metadata = mine
    eu.jobs["carbonplan-9-1"] = Info(Status.RUNNING, metadata=mine)  # a newer start: adopted
    eu.jobs["carbonplan-7-0"] = Info(Status.RUNNING, metadata={"carbonplan_site": "other"})
    eu.jobs["someone-else"] = Info(Status.RUNNING)
    assert ex.poll([j]) == []  # first contact: nothing stale yet
    eu.up = False
    clock.now = NOW + timedelta(minutes=1)
    assert ex.poll([j]) == []  # silent from now on
    clock.now = NOW + timedelta(minutes=7)
    (u,) = ex.poll([j])
    assert u.state == JobState.QUEUED
    lost = j.model_copy(update={"state": JobState.QUEUED})
    eu.up = True
    clock.now += timedelta(minutes=1)
    assert ex.poll([lost]) == []
    assert eu.jobs["carbonplan-7-1"].status == Status.STOPPED  # would have run the job twice
    assert eu.jobs["carbonplan-9-1"].status == Status.RUNNING  # not a job it knows to be lost
    assert eu.jobs["carbonplan-7-0"].status == Status.RUNNING  # another site's
    assert eu.jobs["someone-else"].status == Status.RUNNING


def test_older_attempts_are_stopped_at_first_contact(ex, fakes) -> None:
    """A restarted daemon: attempt 2 runs in the US, attempt 1 still runs in the EU."""
    mine = {"carbonplan_site": "test-site"}
    fakes["eu-north-1"].jobs["carbonplan-7-1"] = Info(Status.RUNNING, metadata=mine)
    fakes["us-east-1"].jobs["carbonplan-7-2"] = Info(Status.RUNNING, metadata=mine)
    j = job(state=JobState.RUNNING, executor="ray", executor_ref="us-east-1:carbonplan-7-2",
            ran_pool=US, attempt=2, started_at=NOW)
    ex.poll([j])
    assert fakes["eu-north-1"].jobs["carbonplan-7-1"].status == Status.STOPPED
    assert fakes["us-east-1"].jobs["carbonplan-7-2"].status == Status.RUNNING


def test_a_head_restart_forgets_jobs_and_they_return_to_the_queue(ex, fakes) -> None:
    j = running(ex, fakes)
    del fakes["eu-north-1"].jobs["carbonplan-7-1"]
    (u,) = ex.poll([j])
    assert u.state == JobState.QUEUED and "no longer knows" in u.reason


def test_cancel_and_logs(ex, fakes) -> None:
    j = running(ex, fakes)
    res = ex.apply(Action(ActionKind.CANCEL, j.model_copy(update={"state": JobState.CANCELLED})))
    assert res.ok and fakes["eu-north-1"].jobs["carbonplan-7-1"].status == Status.STOPPED
    assert ex.logs(j, tail=2) == "two\nthree"
    fakes["eu-north-1"].up = False
    with pytest.raises(ConnectionError, match="eu-north-1"):
        ex.logs(j)
    assert ex.apply(Action(ActionKind.CANCEL, j)).retryable


# -- config and packaging ----------------------------------------------------------------------


def test_ray_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)
    with pytest.raises(InputError) as e:
        make_executor(parse_config(CONFIG), "sqlite:///x.db")
    assert e.value.field == "config executor.kind" and "carbonplan[ray]" in e.value.reason


def _cfg_error(change: dict[str, Any]) -> InputError:
    data = {**CONFIG, **change}
    with pytest.raises(InputError) as e:
        parse_config(data).to_site()
    return e.value


def test_config_mistakes_name_their_key() -> None:
    ray = CONFIG["executor"]["ray"]
    e = _cfg_error({"executor": {"kind": "ray", "ray": {**ray, "clusters": {
        "eu-north-1": {"address": "eu:8265"}}}}})
    assert e.field == "config executor.ray.clusters.eu-north-1.address" and "http" in e.reason
    e = _cfg_error({"executor": {"kind": "ray", "ray": {**ray, "clusters": {
        "eu-north-1": {"adress": "http://eu:8265"}}}}})
    assert e.field == "config executor.ray.clusters.eu-north-1.adress"
    assert e.reason.startswith("unknown key")
    e = _cfg_error({"executor": {"kind": "ray", "ray": {**ray, "clusters": {
        "eu-north-1": {"address": "http://eu:8265"}}}}})
    assert e.field == "config pools[1]" and "[executor.ray.clusters.us-east-1]" in e.reason
    pools = [*CONFIG["pools"][:3], {**CONFIG["pools"][3], "labels": {"ray_cluster": "fra"}}]
    e = _cfg_error({"pools": pools})
    assert e.field == "config pools[3].labels.ray_cluster" and "did you mean 'far'" in e.reason
    e = _cfg_error({"executor": {"kind": "ray", "ray": {**ray, "pools": {"eu/x/spot": {}}}}})
    assert e.field == "config executor.ray.pools.eu/x/spot" and "unknown pool" in e.reason
    e = _cfg_error({"executor": {"kind": "ray", "ray": {**ray, "lost_after": "soon"}}})
    assert e.field == "config executor.ray.lost_after"
    e = _cfg_error({"executor": {"kind": "ray"}})
    assert e.field == "config executor.ray.clusters" and "is required" in e.reason


def test_example_config_loads() -> None:
    from carbonplan.config import load_config

    cfg = load_config(EXAMPLES / "ray-two-regions.toml")
    site = cfg.to_site()
    ray = cfg.executor.ray
    assert cfg.executor.kind == "ray"
    assert {ray.cluster_of(p) for p in site.pools} == set(ray.clusters)


def test_a_cluster_that_accepts_but_never_answers_times_out(store) -> None:
    """Ray's client has no request timeout of its own; ours must reach every request."""
    pytest.importorskip("ray.job_submission")
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (the kernel does), never replies
        cfg = parse_config({**CONFIG, "executor": {"kind": "ray", "ray": {
            "request_timeout_s": 0.5, "clusters": {
                "eu-north-1": {"address": f"http://127.0.0.1:{silent.getsockname()[1]}"},
                "us-east-1": {"address": "http://us:8265"},
                "far": {"address": "http://far:8265"}}}}})
        ex = RayExecutor.from_config(cfg)
        res = ex.apply(start(job(), EU))
    assert not res.ok and res.retryable and res.detail.endswith("is unreachable: timed out")
