"""Apply actions through an executor, exactly once, whatever crashes in between.

For each action: record the intent (unique key) -> call the executor (idempotent for that key) ->
record the result together with the job's new state, in one transaction. A crash after the
executor call leaves an intent without a result; applying the same action again reaches the
executor's idempotent path (an existing run directory, a known Ray submission id, an unchanged
Slurm field) and records the result, so no job is lost and none runs twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from carbonplan.domain import JobState
from carbonplan.executors.base import Action, ActionKind, ActionResult, Executor
from carbonplan.faults import checkpoint
from carbonplan.store.repo import RUN_FIELDS, JobTransition, Store

log = logging.getLogger("carbonplan.executors")

RETRY_DELAYS_S = (0.5, 2.0)  # transient failures are retried twice within a cycle


@dataclass(frozen=True)
class Outcome:
    action: Action
    result: ActionResult
    skipped: bool = False  # already done before (same key)


def _transition_for(action: Action, result: ActionResult, executor: str) -> JobTransition | None:
    p = action.placement
    if action.kind == ActionKind.START:
        return JobTransition(
            JobState.SUBMITTED, reason=f"started in {p.pool}" if p else "started",
            expect=(JobState.QUEUED, JobState.PLANNED),
            updates={"attempt": action.attempt, "executor": executor,
                     "executor_ref": result.ref, "ran_pool": p.pool if p else None,
                     # per-run fields: a stale start would credit a lost attempt with work
                     **dict.fromkeys(RUN_FIELDS)})
    if action.kind == ActionKind.ANNOUNCE and p is not None:
        return JobTransition(JobState.PLANNED, reason=f"planned in {p.pool} at "
                             f"{p.start.isoformat(timespec='minutes')}",
                             expect=(JobState.QUEUED, JobState.PLANNED))
    return None


def _as_intended(action: Action, payload: dict) -> Action:
    """An unfinished action is repeated as it was first meant: if a crash left a START intent on
    pool A and a re-plan since moved the job to pool B, the retry still goes to A, where the
    executor finds the first submission instead of starting the job a second time."""
    p = action.placement
    pool, start = payload.get("pool"), payload.get("start")
    if p is None or pool is None or (pool == p.pool and start is not None and
                                     str(start) == str(p.start)):
        return action
    update = {"pool": pool}
    if start is not None:
        from datetime import datetime

        update["start"] = start if isinstance(start, datetime) else datetime.fromisoformat(
            str(start))
        update["end"] = update["start"] + (p.end - p.start)
    return replace(action, placement=p.model_copy(update=update))


def call_with_retry(fn: Callable[[Action], ActionResult], action: Action,
                    delays: Iterable[float] = RETRY_DELAYS_S,
                    sleep: Callable[[float], None] = time.sleep) -> ActionResult:
    """Call `fn`, retrying retryable failures and exceptions after the given delays."""
    result = ActionResult(ok=False, detail="not attempted")
    for delay in (*delays, None):
        try:
            result = fn(action)
        except Exception as exc:  # an executor bug or a broken connection: report, don't crash
            result = ActionResult(ok=False, detail=f"{type(exc).__name__}: {exc}",
                                  retryable=True)
        if result.ok or not result.retryable or delay is None:
            return result
        log.warning("%s %s: %s; retrying in %.1fs", action.kind, action.job.id, result.detail,
                    delay)
        sleep(delay)
    return result


FINISH_BATCH = 500  # results recorded per transaction (a crash repeats at most this many)


def apply_actions(store: Store, executor: Executor, actions: Iterable[Action], *,
                  delays: Iterable[float] = RETRY_DELAYS_S,
                  sleep: Callable[[float], None] = time.sleep) -> list[Outcome]:
    """Apply each action once; returns what happened to each.

    Intents are recorded for all actions first (one transaction), then each is performed, then
    the results and the jobs' new states are recorded in batches. A crash anywhere in between
    leaves intents without results, which the next call repeats through the executor's
    idempotent path.
    """
    delays = tuple(delays)
    actions = list(actions)
    if not actions:
        return []
    records = store.begin_actions([{
        "key": a.key, "job_id": a.job.id, "kind": a.kind.value, "executor": executor.name,
        "attempt": a.attempt, "plan_id": a.plan_id,
        "payload": {"pool": a.placement.pool if a.placement else None,
                    "start": a.placement.start if a.placement else None}} for a in actions])
    out: list[Outcome] = []
    pending: list[dict] = []
    seen: set[str] = set()
    for action in actions:
        rec = records[action.key]
        if rec.state == "done" or action.key in seen:
            out.append(Outcome(action, ActionResult(ok=True, ref=rec.result.get("ref"),
                                                    detail="already done"), skipped=True))
            continue
        seen.add(action.key)
        if rec.state == "intent":
            action = _as_intended(action, rec.payload)
        result = call_with_retry(executor.apply, action, delays, sleep)
        checkpoint("executor-called")
        pending.append({"key": action.key, "ok": result.ok,
                        "result": {"ref": result.ref, "detail": result.detail,
                                   "retryable": result.retryable,
                                   "refused_pools": list(result.refused_pools)},
                        "error": "" if result.ok else result.detail,
                        "transition": _transition_for(action, result, executor.name)
                        if result.ok else None})
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "%s job %s via %s: %s%s", action.kind.value, action.job.id,
                executor.name, "ok" if result.ok else "failed",
                f" ({result.detail})" if result.detail else "")
        out.append(Outcome(action, result))
        if len(pending) >= FINISH_BATCH:
            store.finish_actions(pending)
            pending = []
    if pending:
        store.finish_actions(pending)
    return out
