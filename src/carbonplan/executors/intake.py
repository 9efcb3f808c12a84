"""Admit jobs that users submitted to an executor directly (Slurm's sbatch) into the store.

Each discovered job is stored once (its external id is unique) and checked as a submitted job
is: a job that could not meet its deadline even with the site to itself, or that fits no pool,
is not dropped. It is stored with the reason, handed back to its executor to run as submitted
(an ANNOUNCE with no placement: Slurm releases it now), and followed as submitted from then on.
Queued jobs of the executor that carbonplan can no longer place in time get the same treatment
on a later call, so a job never waits on a plan that cannot come. Crash-safe: every step is
repeatable, and the action log makes the hand-back happen once. Works with any executor that
discovers jobs; imports no executor module and not the planner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from carbonplan.domain import Job, JobState, Site
from carbonplan.errors import InputError
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind, Executor
from carbonplan.store.repo import Store, TransitionError
from carbonplan.submission import check_feasible_alone

log = logging.getLogger("carbonplan.executors")


@dataclass(frozen=True)
class Admission:
    job: Job
    problem: str = ""  # why carbonplan will not plan it ('' when it will)
    new: bool = True   # first seen now (False: a queued job re-checked)


def _problem(job_spec, site: Site, now: datetime) -> str:
    try:
        check_feasible_alone(job_spec, site, now=now)
    except InputError as exc:
        return f"{exc.field}: {exc.reason}"
    return ""


def admit_discovered(store: Store, executor: Executor, site: Site, *,
                     now: datetime | None = None) -> list[Admission]:
    """Store the executor's new jobs; hand back those carbonplan cannot plan, with the reason."""
    now = now or datetime.now(UTC)
    out: list[Admission] = []
    for found in executor.discover():
        ext = found.spec.external_id
        known = store.find_external(ext) if ext else None
        if known is not None:
            if known.state == JobState.QUEUED and known.executor is None:
                problem = _problem(known, site, now)
                if problem:
                    out.append(_hand_back(store, executor, known, found.ref, problem, new=False))
            continue
        problem = _problem(found.spec, site, now)
        reason = f"found in {executor.name} as {found.ref}"
        try:
            job = store.add_job(found.spec, actor=executor.name,
                                reason=reason + (f"; not planned: {problem}" if problem else ""),
                                now=now)
        except IntegrityError:
            continue  # another daemon stored it first
        if problem:
            out.append(_hand_back(store, executor, job, found.ref, problem))
        else:
            out.append(Admission(job))
    return out


def _hand_back(store: Store, executor: Executor, job: Job, ref: str, problem: str, *,
               new: bool = True) -> Admission:
    log.warning("job %s (%s %s) is not planned, it runs as submitted: %s", job.id,
                executor.name, ref, problem)
    (outcome,) = apply_actions(store, executor, [Action(ActionKind.ANNOUNCE, job, None)])
    if not outcome.result.ok:
        return Admission(job, f"{problem}; hand-back failed: {outcome.result.detail}", new)
    try:
        job = store.transition(job.id, JobState.SUBMITTED, actor=executor.name,
                               reason=f"not planned ({problem}); runs as submitted",
                               expect=(JobState.QUEUED,),
                               updates={"executor": executor.name, "executor_ref": ref})
    except TransitionError:
        job = store.get_job(job.id)  # it moved on meanwhile (cancelled, or seen running)
    return Admission(job, problem, new)
