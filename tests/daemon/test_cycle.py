"""The daemon's cycle with the local executor on real processes (2-second slots)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from carbonplan.domain import JobState
from carbonplan.executors.base import Action, ActionKind, ActionResult
from carbonplan.executors.local import LocalExecutor

from .conftest import (
    SLOT_S,
    ScriptedSignals,
    all_finished,
    cycle_until,
    make_daemon,
    recording_job,
    runs,
)

T_START = datetime.now(UTC)
CLEAN, DIRTY = "clean/a100-80gb/owned", "dirty/a100-80gb/owned"


def clean_later(at_s: float):
    """SE (region clean) is dirty until `at_s` seconds from now, then the cleanest; PL flat."""
    start = datetime.now(UTC)

    def fn(zone: str, t: datetime) -> float:
        if zone == "PL":
            return 700.0
        return 20.0 if (t - start).total_seconds() >= at_s else 900.0
    return fn


def test_jobs_run_where_and_when_planned(store, site, executor, marker) -> None:
    signals = ScriptedSignals(clean_later(8))
    jobs = store.add_jobs([recording_job(marker, f"j{i}") for i in range(3)])
    d = make_daemon(store, site, executor, signals)
    first = d.run_once()
    assert first.triggers == ["initial"] and first.plan_id
    _, plan = store.get_plan()
    placed = {p.job_id: p for p in plan.placements}
    assert set(placed) == {j.id for j in jobs}
    # the clean window opens 8 s from now: everything waits for it and runs there
    assert all(p.pool == "clean/a100-80gb/owned" for p in placed.values())
    assert all(p.start >= T_START + timedelta(seconds=6) for p in placed.values())
    cycle_until(d, all_finished(store))
    done = {j.id: j for j in store.list_jobs(states=None)}
    assert all(j.state == JobState.SUCCEEDED for j in done.values())
    seen = runs(marker)
    assert sorted(r[0] for r in seen) == sorted(placed)  # each ran once
    for jid, pool, at in seen:
        assert pool == placed[jid].pool
        assert at >= placed[jid].start.timestamp() - 0.05  # not before its slot
        assert datetime.fromtimestamp(at, UTC) <= store.get_job(jid).deadline


def test_a_forecast_change_moves_announced_jobs(store, site, executor, marker) -> None:
    signals = ScriptedSignals(clean_later(20))
    store.add_jobs([recording_job(marker, f"j{i}", deadline_s=90) for i in range(2)])
    d = make_daemon(store, site, executor, signals)
    d.run_once()
    _, plan1 = store.get_plan()
    assert {p.pool for p in plan1.placements} == {"clean/a100-80gb/owned"}
    # the clean zone's wind dies: PL is now far cleaner than SE over the planned slots
    signals.fn = lambda zone, t: 50.0 if zone == "PL" else 950.0
    rep = d.run_once()
    assert "forecast" in rep.triggers
    _, plan2 = store.get_plan()
    assert {p.pool for p in plan2.placements} == {"dirty/a100-80gb/owned"}
    announced = store.last_done(ActionKind.ANNOUNCE.value)
    assert {a.payload["pool"] for a in announced.values()} == {"dirty/a100-80gb/owned"}
    quiet = d.run_once()  # nothing changed since: no re-plan, nothing re-announced
    assert quiet.triggers == [] and quiet.actions == 0


def test_frozen_jobs_are_not_moved(store, site, executor, marker) -> None:
    signals = ScriptedSignals(lambda zone, t: 20.0 if zone == "SE" else 700.0)
    # it may not start for 8 s (inside the 30-s freeze window): a job free to start at once could
    # be started, and finish (the recording job exits at once), before the second cycle plans
    not_before = datetime.now(UTC) + timedelta(seconds=8)
    (job,) = store.add_jobs([recording_job(marker, "soon", slots=5, not_before=not_before)])
    d = make_daemon(store, site, executor, signals, freeze_window_s=30)
    d.run_once()
    _, plan1 = store.get_plan()
    signals.fn = lambda zone, t: 20.0 if zone == "PL" else 900.0
    d.run_once()
    _, plan2 = store.get_plan()
    assert store.get_job(job.id).state is not JobState.SUCCEEDED, "it may not have started yet"
    assert plan2.placements[0].pool == plan1.placements[0].pool == "clean/a100-80gb/owned"


def test_queue_changes_trigger_a_replan(store, site, executor, marker) -> None:
    signals = ScriptedSignals(clean_later(30))
    store.add_jobs([recording_job(marker, "a", deadline_s=120)])
    d = make_daemon(store, site, executor, signals)
    d.run_once()
    assert d.run_once().triggers == []
    store.add_jobs([recording_job(marker, "b", deadline_s=120)])
    rep = d.run_once()
    assert rep.triggers == ["queue"]
    assert len(store.get_plan()[1].placements) == 2


def test_a_job_that_cannot_finish_in_time_is_reported_missed(store, site, executor,
                                                              marker) -> None:
    signals = ScriptedSignals(clean_later(0))
    (job,) = store.add_jobs([recording_job(marker, "too-late", slots=10, deadline_s=5)])
    d = make_daemon(store, site, executor, signals)
    rep = d.run_once()
    assert rep.missed == 1
    got = store.get_job(job.id)
    assert got.state == JobState.MISSED_DEADLINE
    assert "cannot finish" in store.events(job.id)[-1].reason
    assert not runs(marker)


def test_a_cancelled_running_job_is_stopped(store, site, executor, tmp_path) -> None:
    import sys

    from carbonplan.domain import JobSpec

    signals = ScriptedSignals(clean_later(0))
    (job,) = store.add_jobs([JobSpec(
        name="long", user="u", project="p", command=[sys.executable, "-c",
                                                     "import time; time.sleep(60)"],
        hours=10 * SLOT_S / 3600, deadline=datetime.now(UTC) + timedelta(seconds=120))])
    d = make_daemon(store, site, executor, signals)
    cycle_until(d, lambda: store.get_job(job.id).state == JobState.RUNNING)
    store.cancel(job.id)
    d.run_once()
    run_dir = store.get_job(job.id).executor_ref
    end = time.monotonic() + 20
    from pathlib import Path

    while not (Path(run_dir) / "exit").exists():
        assert time.monotonic() < end
        time.sleep(0.1)
    assert [a.kind for a in store.actions(job_id=job.id)][-1] == "cancel"
    assert store.get_job(job.id).state == JobState.CANCELLED


def test_a_failing_solver_still_runs_every_job(store, site, executor, marker) -> None:
    signals = ScriptedSignals(clean_later(0))
    store.add_jobs([recording_job(marker, f"j{i}") for i in range(2)])
    d = make_daemon(store, site, executor, signals, solver="pulp:NO_SUCH_SOLVER")
    d.run_once()
    assert store.get_plan()[1].status == "fallback"
    cycle_until(d, all_finished(store))
    assert {j.state for j in store.list_jobs(states=None)} == {JobState.SUCCEEDED}


def test_after_downtime_overdue_jobs_start_first(store, site, executor, marker) -> None:
    signals = ScriptedSignals(lambda zone, t: 20.0 if zone == "SE" else 700.0)
    now = datetime.now(UTC)
    jobs = store.add_jobs([recording_job(marker, f"j{i}", slots=1,
                                         not_before=now + timedelta(seconds=4 + 2 * i))
                           for i in range(4)])
    first = make_daemon(store, site, executor, signals)
    first.run_once()  # plans, then dies before any start is due
    first.lease.release()
    _, plan = store.get_plan()
    assert not [a for a in store.actions() if a.kind == "start"]
    time.sleep(max((p.start - datetime.now(UTC)).total_seconds() for p in plan.placements) + 0.5)
    restarted = make_daemon(store, site, executor, signals, start_grace_s=60)
    restarted.run_once()
    starts = [a for a in store.actions() if a.kind == "start"]
    assert len(starts) == len(jobs)
    planned_start = {p.job_id: p.start for p in plan.placements}
    order = [planned_start[a.job_id] for a in starts]
    assert order == sorted(order)  # the most overdue first


def test_a_plan_gone_stale_in_downtime_is_replanned(store, site, executor, marker) -> None:
    signals = ScriptedSignals(lambda zone, t: 20.0 if zone == "SE" else 700.0)
    now = datetime.now(UTC)
    store.add_jobs([recording_job(marker, "j", slots=1, not_before=now + timedelta(seconds=3))])
    first = make_daemon(store, site, executor, signals)
    first.run_once()
    first.lease.release()
    time.sleep(9)  # its slot starts within 5 s; 9 s is past it plus the grace below
    rep = make_daemon(store, site, executor, signals, start_grace_s=1).run_once()
    assert "infeasible" in rep.triggers
    _, plan = store.get_plan()
    assert plan.placements[0].start >= datetime.now(UTC) - timedelta(seconds=3)


def test_only_the_lease_holder_plans(store, site, executor, marker) -> None:
    signals = ScriptedSignals(clean_later(0))
    store.add_jobs([recording_job(marker, "a")])
    leader = make_daemon(store, site, executor, signals)
    standby = make_daemon(store, site, executor, signals)
    assert leader.run_once().leader
    rep = standby.run_once()
    assert not rep.leader and store.get_plan()[0] == 1
    leader.lease.release()
    assert standby.run_once().leader


class BrokenSignals(ScriptedSignals):
    """A carbon source that fails every time (a bug, a bad config): the daemon must fail open."""

    def build_ci_matrix(self, *args, **kwargs):
        raise RuntimeError("carbon source broken")


def test_jobs_still_run_when_planning_keeps_failing(store, site, executor, marker) -> None:
    store.add_jobs([recording_job(marker, f"j{i}") for i in range(2)])
    d = make_daemon(store, site, executor, BrokenSignals(clean_later(0)))
    rep = d.run_once()
    assert rep.plan_id is not None
    _, plan = store.get_plan()
    assert plan.trigger == "fallback" and len(plan.placements) == 2
    cycle_until(d, all_finished(store))
    assert {j.state for j in store.list_jobs(states=None)} == {JobState.SUCCEEDED}
    assert d.metrics.cycle_errors.labels("plan")._value.get() >= 1


def test_unavailable_signals_keep_the_plan(store, site, executor, marker) -> None:
    """A real provider that cannot be reached: its zones get cached or typical values, and the
    daemon does not re-plan on a 'forecast change' made of those stand-ins."""
    import socket

    from carbonplan.config import parse_config
    from carbonplan.signals.service import SignalService

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    carbon = parse_config({"carbon": {
        "provider": "electricitymaps", "timeout_s": 0.5, "attempts": 1,
        "electricitymaps": {"base_url": f"http://127.0.0.1:{port}/v3", "api_key": "k"}},
    }).carbon
    # not before 40 s: it cannot start, finish and so change the queue between the two cycles
    # (it did once, in CI, when the plan put it at the next slot and the first cycle was slow)
    store.add_jobs([recording_job(marker, "a", deadline_s=120, not_before=datetime.now(UTC)
                                  + timedelta(seconds=40))])
    with SignalService(carbon, store) as signals:
        d = make_daemon(store, site, executor, signals)
        first = d.run_once()
        assert first.triggers == ["initial"] and first.plan_id
        _, plan = store.get_plan()
        assert {p["origin"] for p in plan.details["matrix"]["provenance"]} <= {"model", "stale"}
        again = d.run_once()
        assert again.triggers == [] and again.plan_id == first.plan_id


def test_a_lost_attempt_is_replanned_and_run_again(store, site, executor, tmp_path) -> None:
    import json
    import os
    import signal as sig
    import sys
    from pathlib import Path

    from carbonplan.domain import JobSpec

    signals = ScriptedSignals(clean_later(0))
    marker = tmp_path / "attempts.txt"
    code = (f"import os, time; open({str(marker)!r}, 'a').write(os.environ['CARBONPLAN_ATTEMPT']"
            " + '\\n'); time.sleep(0 if os.environ['CARBONPLAN_ATTEMPT'] != '1' else 60)")
    (job,) = store.add_jobs([JobSpec(name="lost", user="u", project="p",
                                     command=[sys.executable, "-c", code], hours=2 * SLOT_S / 3600,
                                     deadline=datetime.now(UTC) + timedelta(seconds=120))])
    d = make_daemon(store, site, executor, signals)
    cycle_until(d, lambda: store.get_job(job.id).state == JobState.RUNNING)
    info = json.loads((Path(store.get_job(job.id).executor_ref) / "started").read_text())
    os.kill(info["runner"], sig.SIGKILL)  # the machine running attempt 1 goes away
    os.killpg(info["pid"], sig.SIGKILL)
    reports = cycle_until(d, all_finished(store))
    assert any("preempted" in r.triggers for r in reports)
    done = store.get_job(job.id)
    assert done.state == JobState.SUCCEEDED and done.attempt == 2
    assert marker.read_text().split() == ["1", "2"]


class RefusingExecutor(LocalExecutor):
    """A local executor that refuses, for good, to announce the job named `stuck` in `pool`:
    what a Slurm federation does with a job that cannot go back to its origin cluster."""

    def __init__(self, root, pool: str, also: tuple[str, ...] = ()) -> None:
        super().__init__(root)
        self.pool, self.also = pool, also
        self.refusals = 0

    def apply(self, action: Action) -> ActionResult:
        p = action.placement
        if action.kind == ActionKind.ANNOUNCE and action.job.name == "stuck" and p is not None \
                and p.pool == self.pool:
            self.refusals += 1
            return ActionResult(ok=False, detail="cannot go back there",
                                refused_pools=self.also)
        return super().apply(action)


def test_a_pool_refused_for_good_is_left_out_of_later_plans(store, site, tmp_path,
                                                              marker) -> None:
    signals = ScriptedSignals(clean_later(8))
    executor = RefusingExecutor(tmp_path / "runs", CLEAN)
    stuck, free = store.add_jobs([recording_job(marker, "stuck", deadline_s=90),
                                  recording_job(marker, "free", deadline_s=90)])
    d = make_daemon(store, site, executor, signals)
    first = d.run_once()
    assert first.failed_actions == 1 and executor.refusals == 1
    assert {p.pool for p in store.get_plan()[1].placements} == {CLEAN}
    second = d.run_once()
    assert second.triggers == ["refused"]
    placed = {p.job_id: p.pool for p in store.get_plan()[1].placements}
    assert placed == {stuck.id: DIRTY, free.id: CLEAN}  # the refused move is not asked again
    cycle_until(d, all_finished(store))
    assert executor.refusals == 1
    assert {jid: pool for jid, pool, _ in runs(marker)} == placed
    assert store.get_job(stuck.id).state == JobState.SUCCEEDED


def test_a_job_refused_in_every_pool_it_fits_is_unplanned_with_the_reason(
        store, site, tmp_path, marker) -> None:
    signals = ScriptedSignals(clean_later(8))
    executor = RefusingExecutor(tmp_path / "runs", CLEAN)
    (stuck,) = store.add_jobs([recording_job(marker, "stuck", deadline_s=90,
                                             regions=["clean"])])
    d = make_daemon(store, site, executor, signals)
    d.run_once()
    assert d.run_once().triggers == ["refused"]
    plan = store.get_plan()[1]
    assert not plan.placements
    assert plan.unplanned[stuck.id] == (f"the executor refused every pool it fits: {CLEAN}: "
                                        "cannot go back there")
    for _ in range(3):
        assert d.run_once().triggers == []
    assert executor.refusals == 1


def test_pools_refused_together_are_left_out_together(store, site, tmp_path, marker) -> None:
    """A Slurm job that cannot go back to its origin cannot go to any of its pools: one refusal
    names them all, and no plan asks for the next one."""
    signals = ScriptedSignals(clean_later(8))
    executor = RefusingExecutor(tmp_path / "runs", CLEAN, also=(DIRTY,))
    (stuck,) = store.add_jobs([recording_job(marker, "stuck", deadline_s=90)])
    d = make_daemon(store, site, executor, signals)
    d.run_once()
    assert d.run_once().triggers == ["refused"]
    plan = store.get_plan()[1]
    assert not plan.placements
    assert plan.unplanned[stuck.id] == ("the executor refused every pool it fits: "
                                        f"{CLEAN}: cannot go back there; "
                                        f"{DIRTY}: cannot go back there")
    assert executor.refusals == 1
