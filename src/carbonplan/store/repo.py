"""The store's repository API: jobs with their history, plans with placements, forecasts.

Every state change is one transaction (on SQLite: BEGIN IMMEDIATE; on PostgreSQL: the job row is
locked FOR UPDATE), so concurrent writers neither lose nor duplicate anything. Callers get domain
objects, never rows or sessions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert
from sqlmodel import Session, col, select

from carbonplan.domain import (
    Attempt,
    Job,
    JobEvent,
    JobSpec,
    JobState,
    Placement,
    Plan,
    can_transition,
)
from carbonplan.errors import InputError
from carbonplan.store import migrate
from carbonplan.store.db import make_engine, redact
from carbonplan.store.tables import (
    ActionRow,
    AttemptRow,
    ForecastRow,
    JobEventRow,
    JobRow,
    PlacementRow,
    PlanRow,
)


@dataclass(frozen=True)
class RunSpan:
    """Where and when a job's last run was, and when the job last changed."""

    job_id: int
    state: JobState
    pool: str | None
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime


class TransitionError(InputError):
    """A state change the job's current state does not allow."""


def _now() -> datetime:
    return datetime.now(UTC)


def _job_from_row(r: JobRow) -> Job:
    return Job(
        id=r.id, state=JobState(r.state), name=r.name, user=r.user, project=r.project,
        command=json.loads(r.command_json) if r.command_json else None, script=r.script,
        gpus=r.gpus, gpu_types=json.loads(r.gpu_types_json), mig=r.mig, hours=r.hours,
        deadline=r.deadline, not_before=r.not_before, checkpoint_every_h=r.checkpoint_every_h,
        checkpoint_cost_h=r.checkpoint_cost_h, pausable=r.pausable, spot=r.spot,
        regions=json.loads(r.regions_json), home_region=r.home_region, watts=r.watts,
        workdir=r.workdir, env=json.loads(r.env_json), source=r.source,
        external_id=r.external_id, submitted_at=r.submitted_at, updated_at=r.updated_at,
        attempt=r.attempt, done_h=r.done_h, executor=r.executor, executor_ref=r.executor_ref,
        ran_pool=r.ran_pool, started_at=r.started_at, ended_at=r.ended_at, exit_code=r.exit_code,
        gpu_kwh=r.gpu_kwh, energy_meter=r.energy_meter,
    )


# Execution fields a transition may set together with the state, in the same transaction.
EXECUTION_FIELDS = frozenset({"attempt", "done_h", "executor", "executor_ref", "ran_pool",
                              "started_at", "ended_at", "exit_code", "gpu_kwh",
                              "energy_meter"})


RUN_STATES = (JobState.SUBMITTED, JobState.RUNNING)
# what belongs to one run: cleared on the job row once the run is kept as an attempt
RUN_FIELDS = ("started_at", "ended_at", "exit_code", "gpu_kwh", "energy_meter")


def _close_attempt(s: Session, row: JobRow, *, reason: str, now: datetime) -> None:
    """A run going back to the queue: keep it as an attempt (in the same transaction) and clear
    it from the job row, so that only the run that finishes is the job's own. A start that never
    ran (no `started_at`) leaves nothing to keep."""
    if row.started_at is not None and row.ran_pool:
        end = row.ended_at if row.ended_at is not None else now
        s.add(AttemptRow(job_id=row.id, attempt=row.attempt, pool=row.ran_pool,
                         started_at=row.started_at, ended_at=max(end, row.started_at),
                         end_reported=row.ended_at is not None, reason=reason,
                         done_h=row.done_h, gpu_kwh=row.gpu_kwh,
                         energy_meter=row.energy_meter))
    for key in RUN_FIELDS:
        setattr(row, key, None)


def _attempt_from_row(r: AttemptRow) -> Attempt:
    return Attempt(job_id=r.job_id, attempt=r.attempt, pool=r.pool, started_at=r.started_at,
                   ended_at=r.ended_at, end_reported=r.end_reported, reason=r.reason,
                   done_h=r.done_h, gpu_kwh=r.gpu_kwh, energy_meter=r.energy_meter)


def _row_from_spec(spec: JobSpec, state: JobState, now: datetime) -> JobRow:
    return JobRow(
        name=spec.name, user=spec.user, project=spec.project, state=state.value,
        command_json=json.dumps(spec.command) if spec.command is not None else None,
        script=spec.script, gpus=spec.gpus, gpu_types_json=json.dumps(spec.gpu_types),
        mig=spec.mig, hours=spec.hours, deadline=spec.deadline, not_before=spec.not_before,
        checkpoint_every_h=spec.checkpoint_every_h, checkpoint_cost_h=spec.checkpoint_cost_h,
        pausable=spec.pausable, spot=spec.spot, regions_json=json.dumps(spec.regions),
        home_region=spec.home_region, watts=spec.watts, workdir=spec.workdir,
        env_json=json.dumps(spec.env), source=spec.source, external_id=spec.external_id,
        submitted_at=now, updated_at=now,
    )


def _placement_from_row(r: PlacementRow) -> Placement:
    return Placement(
        job_id=r.job_id, pool=r.pool, start=r.start, end=r.end,
        segments=[(datetime.fromisoformat(a), datetime.fromisoformat(b))
                  for a, b in json.loads(r.segments_json)],
        units=r.units, energy_kwh=r.energy_kwh, kg_co2e=r.kg_co2e, embodied_kg=r.embodied_kg,
        cost_usd=r.cost_usd, explanation=json.loads(r.explanation_json),
    )


@dataclass(frozen=True)
class JobTransition:
    """A state change to apply together with another write (see `finish_action`)."""

    to_state: JobState
    reason: str = ""
    actor: str = "daemon"
    expect: tuple[JobState, ...] | None = None
    updates: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionRecord:
    key: str
    job_id: int
    kind: str
    executor: str
    attempt: int
    plan_id: int | None
    payload: dict[str, Any]
    state: str  # intent | done | failed
    result: dict[str, Any]
    error: str
    created_at: datetime
    finished_at: datetime | None


def _action_from_row(r: ActionRow) -> ActionRecord:
    return ActionRecord(key=r.key, job_id=r.job_id, kind=r.kind, executor=r.executor,
                        attempt=r.attempt, plan_id=r.plan_id, payload=json.loads(r.payload_json),
                        state=r.state, result=json.loads(r.result_json), error=r.error,
                        created_at=r.created_at, finished_at=r.finished_at)


class Store:
    """Jobs, plans and forecasts in SQLite or PostgreSQL. Open with `open_store()`."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        migrate.upgrade(self.engine)

    def __repr__(self) -> str:
        return f"Store({redact(self.url)})"

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any exception."""
        with Session(self._write_engine, expire_on_commit=False) as s, s.begin():
            yield s

    def _locked_job(self, s: Session, job_id: int) -> JobRow:
        q = select(JobRow).where(JobRow.id == job_id)
        if self.engine.dialect.name != "sqlite":
            q = q.with_for_update()
        row = s.exec(q).first()
        if row is None:
            raise InputError("job", f"no job {job_id}")
        return row

    def _locked_jobs(self, s: Session, job_ids: Iterable[int]) -> dict[int, JobRow]:
        """Many job rows in one query, locked in id order (no deadlock between writers)."""
        ids = sorted(set(job_ids))
        out: dict[int, JobRow] = {}
        for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            q = select(JobRow).where(col(JobRow.id).in_(ids[i:i + 500])).order_by(col(JobRow.id))
            if self.engine.dialect.name != "sqlite":
                q = q.with_for_update()
            out.update((r.id, r) for r in s.exec(q))
        return out

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(self, spec: JobSpec, *, actor: str = "cli", reason: str = "submitted",
                now: datetime | None = None) -> Job:
        return self.add_jobs([spec], actor=actor, reason=reason, now=now)[0]

    def add_jobs(self, specs: Sequence[JobSpec], *, actor: str = "cli",
                 reason: str = "submitted", now: datetime | None = None) -> list[Job]:
        """Insert jobs in one transaction, each with its first history event."""
        now = now or _now()
        with self.write() as s:
            rows = [_row_from_spec(sp, JobState.QUEUED, now) for sp in specs]
            s.add_all(rows)
            s.flush()
            s.add_all(JobEventRow(job_id=r.id, at=now, from_state=None, to_state=r.state,
                                  reason=reason, actor=actor) for r in rows)
            return [_job_from_row(r) for r in rows]

    def get_job(self, job_id: int) -> Job:
        with self._read() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise InputError("job", f"no job {job_id}")
            return _job_from_row(row)

    def find_external(self, external_id: str) -> Job | None:
        with self._read() as s:
            row = s.exec(select(JobRow).where(JobRow.external_id == external_id)).first()
            return _job_from_row(row) if row else None

    def list_jobs(self, states: Iterable[JobState] | None = None, user: str | None = None,
                  limit: int | None = None, updated_since: datetime | None = None
                  ) -> list[Job]:
        with self._read() as s:
            q = select(JobRow).order_by(col(JobRow.id))
            if states is not None:
                q = q.where(col(JobRow.state).in_([JobState(x).value for x in states]))
            if user is not None:
                q = q.where(JobRow.user == user)
            if updated_since is not None:
                q = q.where(col(JobRow.updated_at) >= updated_since)
            if limit is not None:
                q = q.limit(limit)
            return [_job_from_row(r) for r in s.exec(q)]

    def run_spans(self, states: Iterable[JobState], updated_since: datetime,
                  ) -> list[RunSpan]:
        """The last run of each job in `states` changed since `updated_since`, without loading
        whole jobs (a month of a large site's history is read on every plan)."""
        cols = (JobRow.id, JobRow.state, JobRow.ran_pool, JobRow.started_at, JobRow.ended_at,
                JobRow.updated_at)
        with self._read() as s:
            q = select(*cols).where(
                col(JobRow.state).in_([JobState(x).value for x in states]),
                col(JobRow.updated_at) >= updated_since)
            return [RunSpan(job_id=r[0], state=JobState(r[1]), pool=r[2], started_at=r[3],
                            ended_at=r[4], updated_at=r[5]) for r in s.exec(q)]

    def count_jobs(self) -> dict[str, int]:
        with self._read() as s:
            q = select(JobRow.state, func.count()).group_by(JobRow.state)
            return {state: n for state, n in s.exec(q)}

    def transition(self, job_id: int, to_state: JobState, *, reason: str = "",
                   actor: str = "cli", expect: Iterable[JobState] | None = None,
                   now: datetime | None = None, updates: dict[str, Any] | None = None) -> Job:
        """Move a job to `to_state` and record the event, atomically.

        `updates` sets execution fields (attempt, done_h, executor, executor_ref, ran_pool,
        started_at, ended_at, exit_code, gpu_kwh, energy_meter) in the same transaction.

        Raises:
            InputError: no such job.
            TransitionError: the current state (or `expect`) does not allow the change.
        """
        with self.write() as s:
            return self._transition_in(s, job_id, to_state, reason=reason, actor=actor,
                                       expect=expect, now=now or _now(), updates=updates)

    def _transition_in(self, s: Session, job_id: int, to_state: JobState, *, reason: str,
                       actor: str, expect: Iterable[JobState] | None, now: datetime,
                       updates: dict[str, Any] | None) -> Job:
        row = self._transition_row(s, job_id, to_state, reason=reason, actor=actor,
                                   expect=expect, now=now, updates=updates)
        s.flush()
        return _job_from_row(row)

    def _transition_row(self, s: Session, job_id: int, to_state: JobState, *, reason: str,
                        actor: str, expect: Iterable[JobState] | None, now: datetime,
                        updates: dict[str, Any] | None, row: JobRow | None = None) -> JobRow:
        """The transition itself, on a row already loaded (and locked) or loaded here; the
        caller flushes, so a batch of transitions writes once."""
        if row is None:
            row = self._locked_job(s, job_id)
        cur = JobState(row.state)
        if expect is not None and cur not in set(expect):
            raise TransitionError(f"job {job_id}", f"is {cur.value}, expected "
                                  + " or ".join(sorted(JobState(x).value for x in expect)))
        if not can_transition(cur, to_state):
            raise TransitionError(f"job {job_id}", f"is {cur.value}; cannot become "
                                                   f"{to_state.value}")
        for key, value in (updates or {}).items():
            if key not in EXECUTION_FIELDS:
                raise ValueError(f"transition cannot set {key}")
            setattr(row, key, value)
        if to_state == JobState.QUEUED and cur in RUN_STATES:
            _close_attempt(s, row, reason=reason, now=now)
        row.state = to_state.value
        row.updated_at = now
        s.add(row)
        s.add(JobEventRow(job_id=job_id, at=now, from_state=cur.value, to_state=to_state.value,
                          reason=reason, actor=actor))
        return row

    def cancel(self, job_id: int, *, reason: str = "cancelled by user", actor: str = "cli",
               ) -> Job:
        job = self.get_job(job_id)
        if not job.active:
            raise TransitionError(f"job {job_id}", f"is already {job.state.value}; nothing to "
                                                   "cancel")
        return self.transition(job_id, JobState.CANCELLED, reason=reason, actor=actor)

    def events(self, job_id: int) -> list[JobEvent]:
        with self._read() as s:
            q = select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(
                col(JobEventRow.id))
            return [JobEvent(job_id=e.job_id, at=e.at,
                             from_state=JobState(e.from_state) if e.from_state else None,
                             to_state=JobState(e.to_state), reason=e.reason, actor=e.actor)
                    for e in s.exec(q)]

    def attempts(self, job_ids: Iterable[int] | None = None, *,
                 ended_since: datetime | None = None,
                 ended_before: datetime | None = None) -> list[Attempt]:
        """Runs that ended without finishing their job, oldest first: of `job_ids` (all when
        None), ending in [ended_since, ended_before) when given."""
        q = select(AttemptRow)
        if ended_since is not None:
            q = q.where(col(AttemptRow.ended_at) >= ended_since)
        if ended_before is not None:
            q = q.where(col(AttemptRow.ended_at) < ended_before)
        with self._read() as s:
            if job_ids is None:
                rows = list(s.exec(q))
            else:
                ids = sorted(set(job_ids))
                rows = [r for i in range(0, len(ids), 500)  # SQLite's bound-parameter limit
                        for r in s.exec(q.where(col(AttemptRow.job_id).in_(ids[i:i + 500])))]
            out = [_attempt_from_row(r) for r in rows]
        return sorted(out, key=lambda a: (a.ended_at, a.job_id, a.attempt))

    # -- plans ---------------------------------------------------------------------------------

    def save_plan(self, plan: Plan) -> int:
        """Store a plan and its placements in one transaction; returns the plan id."""
        with self.write() as s:
            row = PlanRow(
                created_at=plan.created_at, trigger=plan.trigger, solver=plan.solver,
                status=plan.status, objective=plan.objective, bound=plan.bound, gap=plan.gap,
                seconds=plan.seconds, iterations=plan.iterations, n_columns=plan.n_columns,
                slot_h=plan.slot_h, carbon_price_usd_per_t=plan.carbon_price_usd_per_t,
                unplanned_json=json.dumps({str(k): v for k, v in plan.unplanned.items()}),
                details_json=json.dumps(plan.details, default=str),
            )
            s.add(row)
            s.flush()
            # one executemany through SQLAlchemy core: 10,000 placements in a fraction of the
            # time ORM objects take
            if plan.placements:
                s.execute(insert(PlacementRow), [dict(
                    plan_id=row.id, job_id=p.job_id, pool=p.pool, start=p.start, end=p.end,
                    segments_json=json.dumps([[a.isoformat(), b.isoformat()]
                                              for a, b in p.segments]),
                    units=p.units, energy_kwh=p.energy_kwh, kg_co2e=p.kg_co2e,
                    embodied_kg=p.embodied_kg, cost_usd=p.cost_usd,
                    explanation_json=json.dumps(p.explanation, default=str),
                ) for p in plan.placements])
            assert row.id is not None
            return row.id

    def get_plan(self, plan_id: int | None = None) -> tuple[int, Plan] | None:
        """A stored plan by id, or the newest one; None when there is none."""
        with self._read() as s:
            q = select(PlanRow)
            q = q.where(PlanRow.id == plan_id) if plan_id else q.order_by(col(PlanRow.id).desc())
            row = s.exec(q.limit(1)).first()
            if row is None:
                return None
            rows = s.exec(select(PlacementRow).where(PlacementRow.plan_id == row.id)
                          .order_by(col(PlacementRow.job_id))).all()
            plan = Plan(
                created_at=row.created_at, trigger=row.trigger, solver=row.solver,
                status=row.status, objective=row.objective, bound=row.bound, gap=row.gap,
                seconds=row.seconds, iterations=row.iterations, n_columns=row.n_columns,
                slot_h=row.slot_h, carbon_price_usd_per_t=row.carbon_price_usd_per_t,
                placements=[_placement_from_row(r) for r in rows],
                unplanned={int(k): v for k, v in json.loads(row.unplanned_json).items()},
                details=json.loads(row.details_json),
            )
            assert row.id is not None
            return row.id, plan

    def latest_placement(self, job_id: int) -> tuple[int, Placement] | None:
        """The job's placement in the newest plan that placed it, with that plan's id."""
        with self._read() as s:
            row = s.exec(select(PlacementRow).where(PlacementRow.job_id == job_id)
                         .order_by(col(PlacementRow.plan_id).desc()).limit(1)).first()
            return (row.plan_id, _placement_from_row(row)) if row else None

    def latest_placements(self, job_ids: Sequence[int]) -> dict[int, Placement]:
        """For each job, its placement in the newest plan that placed it."""
        if not job_ids:
            return {}
        with self._read() as s:
            newest = (select(PlacementRow.job_id, func.max(PlacementRow.plan_id).label("plan_id"))
                      .where(col(PlacementRow.job_id).in_(list(job_ids)))
                      .group_by(PlacementRow.job_id).subquery())
            q = select(PlacementRow).join(
                newest, (PlacementRow.job_id == newest.c.job_id)
                & (PlacementRow.plan_id == newest.c.plan_id))
            return {r.job_id: _placement_from_row(r) for r in s.exec(q)}

    # -- the action log (intents before executor calls, results after) ---------------------------

    def begin_action(self, *, key: str, job_id: int, kind: str, executor: str, attempt: int,
                     plan_id: int | None = None, payload: dict[str, Any] | None = None,
                     now: datetime | None = None) -> ActionRecord:
        """Record the intent to run an action; returns the existing record if `key` is known."""
        from sqlalchemy.exc import IntegrityError

        existing = self.get_action(key)
        if existing is not None:
            return existing
        try:
            with self.write() as s:
                s.add(ActionRow(key=key, job_id=job_id, kind=kind, executor=executor,
                                attempt=attempt, plan_id=plan_id,
                                payload_json=json.dumps(payload or {}, default=str),
                                state="intent", created_at=now or _now()))
        except IntegrityError:  # another process recorded it first
            pass
        rec = self.get_action(key)
        assert rec is not None
        return rec

    def begin_actions(self, intents: Sequence[dict[str, Any]], *,
                      now: datetime | None = None) -> dict[str, ActionRecord]:
        """`begin_action` for many actions in one transaction; failed ones become intents
        again (to be retried). Returns every key's record as it was found: state `done` (skip
        it), `intent` (a crash left it unfinished: repeat it as it was meant), `failed` (retry
        it, possibly elsewhere) or, for a new one, `new`."""
        from sqlalchemy.exc import IntegrityError

        now = now or _now()
        keys = [i["key"] for i in intents]
        for attempt in range(3):  # a concurrent writer may insert one of the keys first
            try:
                with self.write() as s:
                    rows = {r.key: r for r in s.exec(
                        select(ActionRow).where(col(ActionRow.key).in_(keys)))}
                    found = {k: _action_from_row(r) for k, r in rows.items()}
                    for i in intents:
                        row = rows.get(i["key"])
                        if row is None:
                            row = ActionRow(key=i["key"], job_id=i["job_id"], kind=i["kind"],
                                            executor=i["executor"], attempt=i["attempt"],
                                            plan_id=i.get("plan_id"),
                                            payload_json=json.dumps(i.get("payload") or {},
                                                                    default=str),
                                            state="intent", created_at=now)
                            s.add(row)
                            rows[i["key"]] = row
                        elif row.state == "failed":
                            row.state, row.error, row.finished_at = "intent", "", None
                            s.add(row)
                    s.flush()
                    return {k: found.get(k) or replace(_action_from_row(r), state="new")
                            for k, r in rows.items()}
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def finish_actions(self, results: Sequence[dict[str, Any]], *,
                       now: datetime | None = None) -> dict[str, str]:
        """`finish_action` for many actions in one transaction. A job whose state moved on
        meanwhile keeps its state; its action records why. Returns key -> error ('' if none)."""
        now = now or _now()
        errors: dict[str, str] = {}
        with self.write() as s:
            rows = {r.key: r for r in s.exec(select(ActionRow).where(
                col(ActionRow.key).in_([r["key"] for r in results])))}
            jobs = self._locked_jobs(s, (rows[r["key"]].job_id for r in results
                                         if r.get("transition") is not None))
            for r in results:
                row = rows[r["key"]]
                err = r.get("error", "")
                tr: JobTransition | None = r.get("transition")
                if tr is not None:
                    try:
                        self._transition_row(s, row.job_id, tr.to_state, reason=tr.reason,
                                             actor=tr.actor, expect=tr.expect, now=now,
                                             updates=tr.updates, row=jobs.get(row.job_id))
                    except TransitionError as exc:
                        err = f"job state not updated: {exc.reason}"
                row.state = "done" if r["ok"] else "failed"
                row.result_json = json.dumps(r.get("result") or {}, default=str)
                row.error = err
                row.finished_at = now
                s.add(row)
                errors[r["key"]] = err
        return errors

    def finish_action(self, key: str, *, ok: bool, result: dict[str, Any] | None = None,
                      error: str = "", now: datetime | None = None,
                      transition: JobTransition | None = None) -> Job | None:
        """Record an action's result and, in the same transaction, the job's resulting state."""
        now = now or _now()
        with self.write() as s:
            row = s.exec(select(ActionRow).where(ActionRow.key == key)).one()
            row.state = "done" if ok else "failed"
            row.result_json = json.dumps(result or {}, default=str)
            row.error = error
            row.finished_at = now
            s.add(row)
            if transition is None:
                return None
            return self._transition_in(s, row.job_id, transition.to_state,
                                       reason=transition.reason, actor=transition.actor,
                                       expect=transition.expect, now=now,
                                       updates=transition.updates)

    def retry_action(self, key: str) -> None:
        """Turn a failed action back into an intent, to run it again."""
        with self.write() as s:
            row = s.exec(select(ActionRow).where(ActionRow.key == key)).one()
            row.state, row.error, row.finished_at = "intent", "", None
            s.add(row)

    def get_action(self, key: str) -> ActionRecord | None:
        with self._read() as s:
            row = s.exec(select(ActionRow).where(ActionRow.key == key)).first()
            return _action_from_row(row) if row else None

    def actions(self, *, job_id: int | None = None, state: str | None = None,
                ) -> list[ActionRecord]:
        with self._read() as s:
            q = select(ActionRow).order_by(col(ActionRow.id))
            if job_id is not None:
                q = q.where(ActionRow.job_id == job_id)
            if state is not None:
                q = q.where(ActionRow.state == state)
            return [_action_from_row(r) for r in s.exec(q)]

    def last_done(self, kind: str, job_ids: Sequence[int] | None = None,
                  ) -> dict[int, ActionRecord]:
        """For each job, its newest successful action of `kind` (e.g. the placement announced)."""
        with self._read() as s:
            newest = (select(ActionRow.job_id, func.max(ActionRow.id).label("id"))
                      .where(ActionRow.kind == kind, ActionRow.state == "done"))
            if job_ids is not None:
                newest = newest.where(col(ActionRow.job_id).in_(list(job_ids)))
            sub = newest.group_by(ActionRow.job_id).subquery()
            q = select(ActionRow).join(sub, ActionRow.id == sub.c.id)
            return {r.job_id: _action_from_row(r) for r in s.exec(q)}

    def failed_since(self, since: datetime, kind: str | None = None) -> list[ActionRecord]:
        """Actions that failed after `since` (pools the daemon should avoid for a while)."""
        with self._read() as s:
            q = select(ActionRow).where(ActionRow.state == "failed",
                                        col(ActionRow.finished_at) >= since)
            if kind is not None:
                q = q.where(ActionRow.kind == kind)
            return [_action_from_row(r) for r in s.exec(q.order_by(col(ActionRow.id)))]

    # -- forecasts (the cache used by carbonplan.signals) --------------------------------------

    def save_series(self, row: ForecastRow) -> None:
        with self.write() as s:
            s.add(row)

    def latest_series(self, zone: str, provider: str, kind: str) -> ForecastRow | None:
        with self._read() as s:
            q = (select(ForecastRow)
                 .where(ForecastRow.zone == zone, ForecastRow.provider == provider,
                        ForecastRow.kind == kind)
                 .order_by(col(ForecastRow.issued_at).desc(), col(ForecastRow.id).desc())
                 .limit(1))
            return s.exec(q).first()

    def series_between(self, zone: str, provider: str, kind: str, start: datetime,
                       end: datetime) -> list[ForecastRow]:
        """Rows with `start` before `end` and `issued_at` after `start`, oldest fetch first.

        History rows are issued at the end of their last point, so for kind 'history' these are
        exactly the rows that overlap [start, end); applying them in order lets newer fetches
        win where they overlap.
        """
        with self._read() as s:
            q = (select(ForecastRow)
                 .where(ForecastRow.zone == zone, ForecastRow.provider == provider,
                        ForecastRow.kind == kind, col(ForecastRow.start) < end,
                        col(ForecastRow.issued_at) > start)
                 .order_by(col(ForecastRow.fetched_at), col(ForecastRow.id)))
            return list(s.exec(q))

    def prune_series(self, fetched_before: datetime) -> int:
        """Delete cached series fetched before a time, keeping the newest forecast of each
        (zone, provider): it is the fallback when a provider fails. Returns rows deleted."""
        from sqlalchemy import delete

        with self.write() as s:
            newest = (select(func.max(ForecastRow.id))
                      .where(ForecastRow.kind == "forecast")
                      .group_by(ForecastRow.zone, ForecastRow.provider))
            keep = [i for i in s.exec(newest) if i is not None]
            q = delete(ForecastRow).where(col(ForecastRow.fetched_at) < fetched_before)
            if keep:
                q = q.where(col(ForecastRow.id).not_in(keep))
            return int(s.exec(q).rowcount or 0)  # type: ignore[call-overload]
