"""The executor protocol: how a plan reaches Slurm, Ray or local processes.

An executor only translates: `discover()` lists jobs submitted to it directly (Slurm's sbatch),
`apply(action)` performs one announce/start/cancel, `poll(jobs)` reports what happened to the jobs
it runs. It keeps no state of its own: every handle it returns is stored with the job, and
`apply` must be idempotent for the same `Action.key` (a restart repeats an action whose result was
never recorded). Recording intents and results, retries and logging live once, in `apply.py`.
Imports domain only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from carbonplan.domain import Job, JobSpec, JobState, Placement


class ActionKind(StrEnum):
    ANNOUNCE = "announce"  # tell the executor where/when the job is planned (Slurm: StartTime)
    START = "start"        # start the job now (Ray, local); executors that hold jobs start them
    CANCEL = "cancel"      # stop it


@dataclass(frozen=True)
class Capabilities:
    """What an executor does by itself, so the daemon knows what is left to it."""

    starts_at_begin_time: bool = False  # holds announced jobs and starts them itself (Slurm)
    moves_announced_jobs: bool = False  # can move an announced job to another pool
    discovers_jobs: bool = False        # users submit to it directly; discover() finds them
    reports_preemption: bool = False    # poll() reports spot losses with checkpointed progress
    has_logs: bool = False


@dataclass(frozen=True)
class Action:
    """One thing to do to one job."""

    kind: ActionKind
    job: Job
    placement: Placement | None = None
    attempt: int = 0       # START: the attempt this start makes (job.attempt + 1)
    plan_id: int | None = None

    @property
    def key(self) -> str:
        """Idempotency key: the same key means the same effect, performed at most once."""
        j = self.job.id
        if self.kind == ActionKind.START:
            return f"start:{j}:{self.attempt}"
        if self.kind == ActionKind.CANCEL:
            return f"cancel:{j}:{self.job.attempt}"
        p = self.placement
        where = f"{p.pool}@{p.start.isoformat()}" if p else "-"
        return f"announce:{j}:{self.plan_id}:{where}"


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    ref: str | None = None  # the executor's handle for the job (START)
    detail: str = ""
    retryable: bool = False  # transient (unreachable cluster...): try again or re-plan elsewhere
    # a refusal for good that holds for other pools too (every pool of a cluster the job cannot
    # go to): the planner leaves them all out at once instead of learning them one a cycle
    refused_pools: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiscoveredJob:
    """A job found in an executor (spec.source and spec.external_id set)."""

    spec: JobSpec
    ref: str
    state: JobState = JobState.QUEUED
    pool: str | None = None


@dataclass(frozen=True)
class JobUpdate:
    """What an executor saw happen to a job it runs."""

    job_id: int
    state: JobState
    reason: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    done_h: float | None = None  # checkpointed reference-GPU hours, on preemption
    gpu_kwh: float | None = None  # energy the job's GPUs drew, measured (boards only, no PUE)
    energy_meter: str | None = None  # how gpu_kwh was measured
    extra: dict[str, str] = field(default_factory=dict)

    def job_fields(self) -> dict[str, Any]:
        """The job's execution fields this update sets (`Store.transition(updates=...)`): what
        it reported, and the pool the job ran in when the executor named it."""
        out: dict[str, Any] = {k: v for k, v in (
            ("started_at", self.started_at), ("ended_at", self.ended_at),
            ("exit_code", self.exit_code), ("done_h", self.done_h), ("gpu_kwh", self.gpu_kwh),
            ("energy_meter", self.energy_meter)) if v is not None}
        if self.extra.get("pool"):
            out["ran_pool"] = self.extra["pool"]
        return out


@runtime_checkable
class Executor(Protocol):
    name: str
    capabilities: Capabilities

    def discover(self) -> list[DiscoveredJob]:
        """Jobs submitted to the executor directly and not yet known to carbonplan."""
        ...

    def apply(self, action: Action) -> ActionResult:
        """Perform one action; idempotent for the same action key."""
        ...

    def poll(self, jobs: Sequence[Job]) -> list[JobUpdate]:
        """State changes of `jobs` (those this executor runs) since they were last stored."""
        ...

    def logs(self, job: Job, tail: int | None = None) -> str:
        """The job's output, or a line saying where it is."""
        ...
