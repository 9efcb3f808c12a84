"""The local executor with the exactly-once wrapper, on real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonplan.domain import Job, JobSpec, JobState, Placement
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind, ActionResult, Executor
from carbonplan.executors.local import LocalExecutor
from carbonplan.store import open_store

NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(str(tmp_path / "s.db"))
    yield s
    s.close()


@pytest.fixture
def ex(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "runs")


def add(store, argv: list[str], **kw) -> Job:
    return store.add_job(JobSpec(name="t", user="u", project="p", command=argv, hours=1,
                                 deadline=NOW + timedelta(hours=5), **kw))


def start(job: Job, attempt: int = 1) -> Action:
    p = Placement(job_id=job.id, pool="local/t4/owned", start=NOW, end=NOW + timedelta(hours=1),
                  units=1, energy_kwh=0.1, kg_co2e=0.01, cost_usd=0.0)
    return Action(ActionKind.START, job, p, attempt=attempt)


def wait_state(store, ex: Executor, job_id: int, states: set[JobState],
               timeout: float = 30.0) -> Job:
    """Poll like the daemon does until the job reaches one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        job = store.get_job(job_id)
        for u in ex.poll([job]):
            job = store.transition(job_id, u.state, reason=u.reason, actor="daemon",
                                   updates=u.job_fields())
        if job.state in states:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck in {job.state}"
        time.sleep(0.05)


def test_runs_a_command_with_its_env_and_workdir(store, ex, tmp_path: Path) -> None:
    (tmp_path / "wd").mkdir()
    code = ("import os; print('job', os.environ['CARBONPLAN_JOB_ID'], os.environ['SEED'], "
            "os.environ['CARBONPLAN_POOL']); open('made-here', 'w').write('x')")
    job = add(store, [sys.executable, "-c", code], env={"SEED": "7"}, workdir=str(tmp_path / "wd"))
    (out,) = apply_actions(store, ex, [start(job)])
    assert out.result.ok
    job = store.get_job(job.id)
    assert job.state == JobState.SUBMITTED and job.attempt == 1 and job.executor == "local"
    assert job.ran_pool == "local/t4/owned"
    done = wait_state(store, ex, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert done.state == JobState.SUCCEEDED and done.exit_code == 0
    assert done.started_at and done.ended_at and done.ended_at >= done.started_at
    assert ex.logs(done).strip() == f"job {job.id} 7 local/t4/owned"
    assert (tmp_path / "wd" / "made-here").exists()
    history = [e.to_state for e in store.events(job.id)]
    assert history == [JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED] \
        or history == [JobState.QUEUED, JobState.SUBMITTED, JobState.SUCCEEDED]


def test_the_same_start_twice_runs_once(store, ex, tmp_path: Path) -> None:
    marker = tmp_path / "count"
    job = add(store, [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"])
    a = start(job)
    first, = apply_actions(store, ex, [a])
    second, = apply_actions(store, ex, [a])
    assert first.result.ok and second.skipped
    wait_state(store, ex, job.id, {JobState.SUCCEEDED})
    # and directly through the executor, as after a crash between the call and its record
    assert ex.apply(a).ok and ex.apply(a).detail == "attempt already ran"
    time.sleep(0.3)
    assert marker.read_text() == "x"


def test_crash_between_executor_call_and_record(store, ex, tmp_path: Path) -> None:
    """The daemon died after starting the job but before recording it: the retry runs nothing."""
    marker = tmp_path / "count"
    job = add(store, [sys.executable, "-c",
                      f"import time; open({str(marker)!r}, 'a').write('x'); time.sleep(1)"])
    a = start(job)
    store.begin_action(key=a.key, job_id=job.id, kind="start", executor="local", attempt=1)
    assert ex.apply(a).ok  # ... and then the daemon was killed
    assert store.get_job(job.id).state == JobState.QUEUED
    (out,) = apply_actions(store, ex, [a])  # the restarted daemon repeats the intent
    assert out.result.ok and not out.skipped
    assert store.get_job(job.id).state == JobState.SUBMITTED
    wait_state(store, ex, job.id, {JobState.SUCCEEDED})
    assert marker.read_text() == "x"
    assert [r.state for r in store.actions(job_id=job.id)] == ["done"]


def test_two_runners_for_one_attempt_run_the_command_once(ex, store, tmp_path: Path) -> None:
    marker = tmp_path / "count"
    job = add(store, [sys.executable, "-c",
                      f"import time; open({str(marker)!r}, 'a').write('x'); time.sleep(0.5)"])
    ex.apply(start(job))
    d = ex.attempt_dir(job, 1)
    extra = [subprocess.Popen([sys.executable, "-m", "carbonplan.executors.local_runner", str(d)])
             for _ in range(3)]
    for p in extra:
        p.wait(timeout=30)
    for _ in range(200):
        if (d / "exit").exists():
            break
        time.sleep(0.05)
    assert marker.read_text() == "x"


def test_failures_and_missing_programs(store, ex) -> None:
    job = add(store, [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    apply_actions(store, ex, [start(job)])
    failed = wait_state(store, ex, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert failed.state == JobState.FAILED and failed.exit_code == 3
    assert "boom" in ex.logs(failed)
    job = add(store, ["/no/such/program"])
    apply_actions(store, ex, [start(job)])
    missing = wait_state(store, ex, job.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert missing.exit_code == 127 and "cannot start" in ex.logs(missing)


def test_cancel_stops_the_process_group(store, ex, tmp_path: Path) -> None:
    job = add(store, ["/bin/sh", "-c", "sleep 60 & wait"])
    apply_actions(store, ex, [start(job)])
    running = wait_state(store, ex, job.id, {JobState.RUNNING})
    store.cancel(job.id)
    (out,) = apply_actions(store, ex, [Action(ActionKind.CANCEL, store.get_job(job.id))])
    assert out.result.ok and "SIGTERM" in out.result.detail
    d = Path(running.executor_ref)
    for _ in range(200):
        if (d / "exit").exists():
            break
        time.sleep(0.05)
    assert json.loads((d / "exit").read_text())["code"] == -signal.SIGTERM
    assert ex.poll([store.get_job(job.id)]) == []  # cancelled stays cancelled


def test_a_killed_runner_returns_the_job_to_the_queue(store, ex) -> None:
    job = add(store, ["sleep", "60"])
    apply_actions(store, ex, [start(job)])
    running = wait_state(store, ex, job.id, {JobState.RUNNING})
    info = json.loads((Path(running.executor_ref) / "started").read_text())
    os.kill(info["runner"], signal.SIGKILL)  # as if the machine went down
    os.killpg(info["pid"], signal.SIGKILL)
    lost = wait_state(store, ex, job.id, {JobState.QUEUED})
    assert "lost" in store.events(job.id)[-1].reason
    assert lost.attempt == 1  # the next start will be attempt 2, in a fresh run directory
    # the lost run is kept for the report: from its start to when carbonplan saw it gone (the
    # runner died without an end time)
    (run,) = store.attempts([job.id])
    assert (run.attempt, run.pool, run.end_reported) == (1, running.ran_pool, False)
    assert run.started_at == running.started_at and run.ended_at == lost.updated_at
    assert lost.started_at is None and lost.ran_pool == running.ran_pool


class Flaky:
    """An executor that fails twice with a transient error, then works (a fault we cannot cause
    with a real local process)."""

    name = "flaky"
    capabilities = LocalExecutor.capabilities

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, action: Action) -> ActionResult:
        self.calls += 1
        if self.calls < 3:
            raise ConnectionError("cluster unreachable")
        return ActionResult(ok=True, ref="x")


def test_transient_failures_are_retried_then_recorded(store) -> None:
    job = add(store, ["true"])
    flaky = Flaky()
    (out,) = apply_actions(store, flaky, [start(job)], sleep=lambda s: None)
    assert out.result.ok and flaky.calls == 3
    always = Flaky()
    always.calls = -10
    job2 = add(store, ["true"])
    (bad,) = apply_actions(store, always, [start(job2)], sleep=lambda s: None)
    assert not bad.result.ok and "unreachable" in bad.result.detail
    rec = store.get_action(start(job2).key)
    assert rec.state == "failed" and store.get_job(job2.id).state == JobState.QUEUED
    assert rec.result["retryable"] is True  # the daemon avoids such a pool only for a while
