"""Domain models: jobs, accelerators, regions, pools, the site, placements and plans.

Pydantic v2 models validated at the edges; a failure becomes one `InputError(field, reason)` through
`input_error()`. This module imports only errors and formulas from carbonplan: the catalog, config,
store and planner import it, never the other way round.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from carbonplan.errors import InputError

# ---------------------------------------------------------------------------------------------
# Enumerations and the job state machine


class Market(StrEnum):
    ON_DEMAND = "on_demand"
    SPOT = "spot"
    OWNED = "owned"


class JobState(StrEnum):
    QUEUED = "queued"
    PLANNED = "planned"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSED_DEADLINE = "missed-deadline"


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.MISSED_DEADLINE}
)
ACTIVE_STATES = frozenset(set(JobState) - TERMINAL_STATES)
FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED)      # it ran to its end
UNFINISHED_STATES = (JobState.CANCELLED, JobState.MISSED_DEADLINE)  # ended without running out

# Allowed transitions. A job goes back to queued when it is preempted or its placement is dropped.
# An executor that runs jobs itself (Slurm) may report a job finished that carbonplan never saw
# start (it ran between two polls): queued and planned jobs may end directly.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.PLANNED, JobState.SUBMITTED, JobState.RUNNING,
                                JobState.SUCCEEDED, JobState.CANCELLED, JobState.MISSED_DEADLINE,
                                JobState.FAILED}),
    JobState.PLANNED: frozenset({JobState.QUEUED, JobState.PLANNED, JobState.SUBMITTED,
                                 JobState.RUNNING, JobState.SUCCEEDED, JobState.CANCELLED,
                                 JobState.MISSED_DEADLINE, JobState.FAILED}),
    JobState.SUBMITTED: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED,
                                   JobState.FAILED, JobState.CANCELLED, JobState.MISSED_DEADLINE}),
    JobState.RUNNING: frozenset({JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED,
                                 JobState.CANCELLED, JobState.MISSED_DEADLINE}),
    **{s: frozenset() for s in TERMINAL_STATES},
}


def can_transition(src: JobState, dst: JobState) -> bool:
    return dst in TRANSITIONS[src]


# ---------------------------------------------------------------------------------------------
# Hardware and places


def _positive(v: float) -> float:
    if not v > 0:
        raise ValueError(f"must be > 0, got {v}")
    return v


def _non_negative(v: float) -> float:
    if not v >= 0:
        raise ValueError(f"must be >= 0, got {v}")
    return v


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("must carry a time zone (UTC offset)")
    return v


Positive = Annotated[float, AfterValidator(_positive)]
NonNegative = Annotated[float, AfterValidator(_non_negative)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class MigProfile(BaseModel):
    """A MIG profile: `slices` of the GPU's 7 compute slices, with its memory."""

    model_config = _FROZEN
    name: str
    slices: int = Field(ge=1, le=7)
    memory_gb: Positive
    max_instances: int = Field(ge=1, le=7)


class Accelerator(BaseModel):
    """A GPU model: board power, speed relative to the reference GPU, embodied carbon, MIG."""

    model_config = _FROZEN
    id: str
    name: str
    family: str
    memory_gb: Positive
    idle_w: NonNegative
    max_w: Positive
    speed: Positive
    embodied_kg: NonNegative
    mig_profiles: dict[str, MigProfile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _idle_below_max(self) -> Accelerator:
        if self.idle_w >= self.max_w:
            raise ValueError(f"idle_w ({self.idle_w}) must be below max_w ({self.max_w})")
        return self

    def matches(self, spec: str) -> bool:
        """True when a user's GPU type names this model or its family ('a100' or 'a100-80gb')."""
        s = spec.lower()
        return s in (self.id, self.family)


class Region(BaseModel):
    """A cloud region or an on-prem site: its grid zone, PUE and optional facility power cap."""

    model_config = _FROZEN
    name: str
    provider: str = "onprem"
    zone: str
    pue: float = Field(ge=1.0, le=3.0)
    power_cap_kw: Positive | None = None
    energy_price_usd_per_kwh: NonNegative = 0.0
    location: str = ""
    continent: str = ""


class Pool(BaseModel):
    """Capacity of one (region, accelerator[:MIG profile], market), priced per unit-hour.

    `capacity` counts the pool's unit as an operator sees it: GPUs, or MIG instances of `mig`.
    """

    model_config = _FROZEN
    region: str
    accelerator: str
    mig: str | None = None
    market: Market
    capacity: int = Field(ge=1)
    price_usd_per_unit_h: NonNegative = 0.0
    eviction_rate_per_h: NonNegative = 0.0
    labels: dict[str, str] = Field(default_factory=dict)  # executor mapping (partition, address...)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        gpu = f"{self.accelerator}:{self.mig}" if self.mig else self.accelerator
        return f"{self.region}/{gpu}/{self.market.value}"


class Site(BaseModel):
    """Everything a site plans over: accelerators, regions, pools, and the carbon price."""

    model_config = ConfigDict(frozen=True)
    accelerators: dict[str, Accelerator]
    regions: dict[str, Region]
    pools: tuple[Pool, ...]
    carbon_price_usd_per_t: NonNegative = 100.0
    carbon_budget_t: Positive | None = None
    embodied_lifetime_h: Positive = 5 * 8760.0
    reference_gpu: str = "a100-80gb"
    home_region: str | None = None

    def regions_matching(self, patterns: list[str]) -> list[str]:
        """Region names matched by shell-style patterns (all regions for an empty list)."""
        if not patterns:
            return list(self.regions)
        return [r for r in self.regions if any(fnmatch.fnmatchcase(r, p) for p in patterns)]

    def accelerators_matching(self, specs: list[str]) -> list[str]:
        """Accelerator ids named by GPU types or families (all for an empty list or 'any')."""
        if not specs or any(s.lower() == "any" for s in specs):
            return list(self.accelerators)
        return [a.id for a in self.accelerators.values() if any(a.matches(s) for s in specs)]


# ---------------------------------------------------------------------------------------------
# Jobs, placements and plans


class JobSpec(BaseModel):
    """What a user asks for: work on the reference GPU, resources, and the time window."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(min_length=1, max_length=200)
    user: str = Field(min_length=1, max_length=100)
    project: str = Field(min_length=1, max_length=100)
    command: list[str] | None = None
    script: str | None = None
    gpus: int = Field(default=1, ge=1, le=4096)
    gpu_types: list[str] = Field(default_factory=list)
    mig: str | None = None
    hours: float = Field(gt=0, le=24 * 366)
    deadline: AwareDatetime
    not_before: AwareDatetime | None = None
    checkpoint_every_h: Positive | None = None
    checkpoint_cost_h: NonNegative = 0.0
    pausable: bool = False
    spot: bool = True
    regions: list[str] = Field(default_factory=list)
    home_region: str | None = None
    watts: float | None = Field(default=None, gt=0, le=5000)
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    source: str = "cli"
    external_id: str | None = None

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or not v[0]):
            raise ValueError("is empty")
        return v

    @model_validator(mode="after")
    def _one_entry_point(self) -> JobSpec:
        if self.command is None and self.script is None:
            raise ValueError("give a command after '--' or a batch script")
        if self.command is not None and self.script is not None:
            raise ValueError("give either a command or a batch script, not both")
        if self.not_before is not None and self.deadline <= self.not_before:
            raise ValueError("deadline must be after not_before")
        return self


class Job(JobSpec):
    """A job in the queue: its spec plus identity and lifecycle state."""

    model_config = ConfigDict(extra="forbid")
    id: int
    state: JobState
    submitted_at: AwareDatetime
    updated_at: AwareDatetime
    attempt: int = 0                 # starts so far; the next start is attempt + 1
    done_h: float = 0.0              # reference-GPU hours completed and checkpointed
    executor: str | None = None      # executor running the current attempt
    executor_ref: str | None = None  # its handle (Slurm cluster:id, Ray submission id, run dir)
    ran_pool: str | None = None      # pool the current or last attempt ran in
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    exit_code: int | None = None
    gpu_kwh: float | None = None      # energy the last attempt's GPUs drew, measured (no PUE)
    energy_meter: str | None = None   # how: "nvml-counter" | "nvml-power-samples"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def remaining_h(self) -> float:
        """Reference-GPU hours still to run (all of it unless a checkpoint was recorded)."""
        return max(self.hours - self.done_h, 0.0)


class JobEvent(BaseModel):
    """One state change in a job's history."""

    model_config = ConfigDict(frozen=True)
    job_id: int
    at: AwareDatetime
    from_state: JobState | None
    to_state: JobState
    reason: str = ""
    actor: str = "cli"


class Attempt(BaseModel):
    """A run of a job that ended without finishing it: preempted, requeued or lost.

    The job row keeps only the run in progress or the one that finished; these keep the energy,
    carbon and $ of the runs before it countable, and the interruptions of each pool."""

    model_config = ConfigDict(frozen=True)
    job_id: int
    attempt: int
    pool: str
    started_at: AwareDatetime
    ended_at: AwareDatetime          # the executor's end time, else when carbonplan saw it back
    end_reported: bool               # ended_at came from the executor, not the requeue time
    reason: str = ""
    done_h: float = 0.0              # reference-GPU hours checkpointed after this run
    gpu_kwh: float | None = None
    energy_meter: str | None = None

    @property
    def hours(self) -> float:
        return max((self.ended_at - self.started_at).total_seconds(), 0.0) / 3600.0


class Placement(BaseModel):
    """Where and when one job runs in a plan, with its projected energy, emissions and cost."""

    model_config = ConfigDict(frozen=True)
    job_id: int
    pool: str
    start: AwareDatetime
    end: AwareDatetime
    segments: list[tuple[AwareDatetime, AwareDatetime]] = Field(default_factory=list)
    units: float
    energy_kwh: NonNegative
    kg_co2e: NonNegative
    embodied_kg: NonNegative = 0.0
    cost_usd: NonNegative
    explanation: dict[str, Any] = Field(default_factory=dict)


class Plan(BaseModel):
    """A plan: placements, jobs left unplanned with the reason, and the solver's certificate."""

    model_config = ConfigDict(frozen=True)
    created_at: AwareDatetime
    trigger: str = "manual"
    solver: str = "highs"
    status: str
    objective: float
    bound: float
    gap: float
    seconds: float
    iterations: int = 0
    n_columns: int = 0
    slot_h: float = 1.0
    carbon_price_usd_per_t: float = 0.0
    placements: list[Placement] = Field(default_factory=list)
    unplanned: dict[int, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Errors


def input_error(exc: ValidationError, *, prefix: str = "", names: dict[str, str] | None = None,
                ) -> InputError:
    """The first error of a pydantic ValidationError as one InputError naming the field.

    Args:
        exc: the validation error.
        prefix: prepended to the field path (e.g. 'regions[2].').
        names: maps model field names to the names the user typed (CLI flags, config keys).
    """
    err = exc.errors()[0]
    loc = [str(x) for x in err.get("loc", ()) if x != "__root__"]
    names = names or {}
    if loc:
        head = names.get(loc[0], loc[0])
        field = prefix + ".".join([head, *loc[1:]])
    else:
        field = prefix.rstrip(".") or exc.title
    msg = err.get("msg", "is invalid")
    for junk in ("Value error, ", "Assertion failed, "):
        msg = msg.replace(junk, "")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    elif err.get("type") == "missing":
        msg = "is required"
    return InputError(field, msg[0].lower() + msg[1:] if msg else "is invalid")
