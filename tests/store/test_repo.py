"""The repository API: jobs with history, transitions, plans and placements."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import StatementError

from carbonplan.domain import JobSpec, JobState, Placement, Plan
from carbonplan.errors import InputError
from carbonplan.store import open_store
from carbonplan.store.repo import TransitionError

T = datetime(2026, 11, 23, 12, tzinfo=UTC)


def spec(name: str = "j", **kw) -> JobSpec:
    base = dict(name=name, user="u", project="p", command=["true"], hours=1.0,
                deadline=T + timedelta(hours=10))
    return JobSpec(**{**base, **kw})


@pytest.fixture
def store(store_url: str):
    s = open_store(store_url)
    yield s
    s.close()


def test_roundtrip_keeps_every_field(store) -> None:
    sp = spec(gpus=4, gpu_types=["a100", "h100"], mig=None, not_before=T, checkpoint_every_h=0.5,
              checkpoint_cost_h=0.1, pausable=True, spot=False, regions=["eu-*"],
              home_region="eu-north-1", watts=350, env={"A": "1"}, external_id="c1:42")
    job = store.add_job(sp, now=T)
    got = store.get_job(job.id)
    assert got.model_dump(include=set(JobSpec.model_fields)) == sp.model_dump()
    assert (got.attempt, got.done_h, got.executor_ref, got.remaining_h) == (0, 0.0, None, 1.0)
    assert got.state == JobState.QUEUED and got.submitted_at == T
    assert got.deadline.tzinfo is not None
    assert store.find_external("c1:42").id == job.id


def test_history_records_every_transition(store) -> None:
    job = store.add_job(spec(), now=T)
    store.transition(job.id, JobState.PLANNED, reason="plan 1", actor="planner")
    store.transition(job.id, JobState.SUBMITTED, reason="sbatch", actor="daemon")
    store.transition(job.id, JobState.RUNNING, actor="daemon")
    store.transition(job.id, JobState.SUCCEEDED, actor="daemon")
    ev = store.events(job.id)
    assert [e.to_state for e in ev] == [JobState.QUEUED, JobState.PLANNED, JobState.SUBMITTED,
                                        JobState.RUNNING, JobState.SUCCEEDED]
    assert [e.from_state for e in ev][1:] == [e.to_state for e in ev][:-1]
    assert ev[1].actor == "planner" and ev[1].reason == "plan 1"


def test_invalid_transitions_change_nothing(store) -> None:
    job = store.add_job(spec())
    with pytest.raises(TransitionError):
        store.transition(job.id, JobState.QUEUED)  # queued -> queued is not a change
    with pytest.raises(TransitionError):
        store.transition(job.id, JobState.PLANNED, expect=[JobState.RUNNING])
    store.cancel(job.id)
    with pytest.raises(TransitionError):
        store.cancel(job.id)
    assert len(store.events(job.id)) == 2
    with pytest.raises(InputError):
        store.get_job(999)


def test_list_filters(store) -> None:
    a = store.add_job(spec("a"))
    store.add_job(spec("b", user="other"))
    store.cancel(a.id)
    assert [j.name for j in store.list_jobs()] == ["a", "b"]
    assert [j.name for j in store.list_jobs(states=[JobState.QUEUED])] == ["b"]
    assert [j.name for j in store.list_jobs(user="u")] == ["a"]
    assert store.count_jobs() == {"cancelled": 1, "queued": 1}


def test_plans_and_latest_placements(store) -> None:
    a, b = store.add_jobs([spec("a"), spec("b")])
    p1 = Placement(job_id=a.id, pool="r/t4/spot", start=T, end=T + timedelta(hours=2), units=1,
                   energy_kwh=1.0, kg_co2e=0.2, cost_usd=1.0,
                   segments=[(T, T + timedelta(hours=1)), (T + timedelta(hours=3),
                                                           T + timedelta(hours=4))])
    id1 = store.save_plan(Plan(created_at=T, status="optimal", objective=1, bound=1, gap=0,
                               seconds=0.1, placements=[p1], unplanned={b.id: "deadline"}))
    p2 = p1.model_copy(update={"pool": "r/t4/on_demand"})
    id2 = store.save_plan(Plan(created_at=T + timedelta(minutes=5), status="time_limit",
                               objective=2, bound=1.5, gap=0.25, seconds=3, placements=[p2]))
    assert id2 > id1
    pid, plan = store.get_plan()
    assert pid == id2 and plan.status == "time_limit" and plan.placements[0].pool.endswith("demand")
    _, old = store.get_plan(id1)
    assert old.unplanned == {b.id: "deadline"} and old.placements[0].segments == p1.segments
    assert store.latest_placement(a.id)[0] == id2
    assert store.latest_placement(b.id) is None
    assert set(store.latest_placements([a.id, b.id])) == {a.id}


def test_naive_times_are_refused(store) -> None:
    job = store.add_job(spec())
    with pytest.raises(StatementError, match="naive datetime"):
        store.transition(job.id, JobState.PLANNED, now=datetime(2026, 1, 1))
    assert store.get_job(job.id).state == JobState.QUEUED


def test_transition_sets_execution_fields_atomically(store) -> None:
    job = store.add_job(spec(hours=4.0))
    got = store.transition(job.id, JobState.SUBMITTED, actor="daemon", updates={
        "attempt": 1, "executor": "local", "executor_ref": "run-1", "ran_pool": "r/t4/spot",
        "started_at": T})
    assert (got.attempt, got.executor, got.executor_ref, got.started_at) == (1, "local", "run-1", T)
    got = store.transition(job.id, JobState.RUNNING, actor="daemon")
    got = store.transition(job.id, JobState.QUEUED, reason="preempted", actor="daemon",
                           updates={"done_h": 1.5})
    assert got.remaining_h == 2.5 and got.attempt == 1
    with pytest.raises(ValueError):
        store.transition(job.id, JobState.PLANNED, updates={"hours": 1.0})
    assert store.get_job(job.id).state == JobState.QUEUED


def run(store, job_id: int, attempt: int, pool: str, start: datetime) -> None:
    store.transition(job_id, JobState.SUBMITTED, updates={
        "attempt": attempt, "ran_pool": pool, "started_at": None, "ended_at": None})
    store.transition(job_id, JobState.RUNNING, updates={"started_at": start})


def test_a_run_back_in_the_queue_is_kept_as_an_attempt(store) -> None:
    job = store.add_job(spec(hours=4.0))
    run(store, job.id, 1, "r/a100/spot", T)
    # preempted, with the executor's end time and the work its checkpoints saved
    got = store.transition(job.id, JobState.QUEUED, reason="preempted", now=T + timedelta(hours=3),
                           updates={"ended_at": T + timedelta(hours=2), "done_h": 1.5,
                                    "gpu_kwh": 0.7, "energy_meter": "nvml-counter"})
    # the run belongs to the attempt now, not to the job
    assert (got.started_at, got.ended_at, got.gpu_kwh, got.energy_meter) == (None,) * 4
    assert got.done_h == 1.5 and got.ran_pool == "r/a100/spot"
    (a,) = store.attempts([job.id])
    assert (a.job_id, a.attempt, a.pool, a.started_at, a.ended_at, a.end_reported) == (
        job.id, 1, "r/a100/spot", T, T + timedelta(hours=2), True)
    assert (a.reason, a.done_h, a.gpu_kwh, a.energy_meter, a.hours) == (
        "preempted", 1.5, 0.7, "nvml-counter", 2.0)
    # lost without an end time: ends when carbonplan saw it back in the queue
    run(store, job.id, 2, "r/a100/on_demand", T + timedelta(hours=4))
    store.transition(job.id, JobState.QUEUED, reason="lost", now=T + timedelta(hours=5))
    # a start that never ran leaves nothing to keep
    store.transition(job.id, JobState.SUBMITTED, updates={"attempt": 3, "started_at": None})
    store.transition(job.id, JobState.QUEUED, reason="no node", now=T + timedelta(hours=6))
    run(store, job.id, 4, "r/a100/on_demand", T + timedelta(hours=7))
    done = store.transition(job.id, JobState.SUCCEEDED, updates={
        "ended_at": T + timedelta(hours=9)})
    assert (done.started_at, done.ended_at) == (T + timedelta(hours=7), T + timedelta(hours=9))
    runs = store.attempts([job.id])
    assert [(r.attempt, r.end_reported, r.ended_at) for r in runs] == [
        (1, True, T + timedelta(hours=2)), (2, False, T + timedelta(hours=5))]
    # by period and job
    other = store.add_job(spec(name="other"))
    run(store, other.id, 1, "r/a100/spot", T)
    store.transition(other.id, JobState.QUEUED, reason="preempted", now=T + timedelta(hours=1))
    assert [r.job_id for r in store.attempts()] == [other.id, job.id, job.id]
    assert [r.attempt for r in store.attempts(ended_since=T + timedelta(hours=2),
                                              ended_before=T + timedelta(hours=5))] == [1]
    # more job ids than one query may bind on SQLite
    assert len(store.attempts([other.id, *range(10_000, 11_000)])) == 1


def test_action_log_records_each_key_once(store) -> None:
    job = store.add_job(spec())
    a = store.begin_action(key=f"start:{job.id}:1", job_id=job.id, kind="start",
                           executor="local", attempt=1, payload={"pool": "p"})
    again = store.begin_action(key=f"start:{job.id}:1", job_id=job.id, kind="start",
                               executor="local", attempt=1)
    assert a.state == again.state == "intent" and again.payload == {"pool": "p"}
    assert [r.key for r in store.actions(state="intent")] == [f"start:{job.id}:1"]
    store.finish_action(a.key, ok=True, result={"ref": "run-1"})
    done = store.get_action(a.key)
    assert done.state == "done" and done.result == {"ref": "run-1"} and done.finished_at
    assert store.actions(state="intent") == []
