"""SQLModel tables. The schema is owned by the migrations in store/migrations/versions; a test
checks that these classes and the migrated schema agree.

Lists and mappings are stored as JSON text so the same schema serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from carbonplan.store.db import UTCDateTime


def _time(nullable: bool = False, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("external_id", name="uq_jobs_external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    user: str = Field(index=True)
    project: str
    state: str = Field(index=True)
    command_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    script: str | None = None
    gpus: int
    gpu_types_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    mig: str | None = None
    hours: float
    deadline: datetime = Field(sa_column=_time())
    not_before: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    checkpoint_every_h: float | None = None
    checkpoint_cost_h: float = 0.0
    pausable: bool = False
    spot: bool = True
    regions_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    home_region: str | None = None
    watts: float | None = None
    workdir: str | None = None
    env_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    source: str = "cli"
    external_id: str | None = None
    submitted_at: datetime = Field(sa_column=_time())
    updated_at: datetime = Field(sa_column=_time())
    # execution (0002)
    attempt: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    done_h: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    executor: str | None = None
    executor_ref: str | None = None
    ran_pool: str | None = None
    started_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    ended_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    exit_code: int | None = None
    # measured energy (0003)
    gpu_kwh: float | None = None
    energy_meter: str | None = None


class JobEventRow(SQLModel, table=True):
    """Every state change of a job, in order: the job's full history."""

    __tablename__ = "job_events"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    at: datetime = Field(sa_column=_time())
    from_state: str | None = None
    to_state: str
    reason: str = ""
    actor: str = "cli"


class AttemptRow(SQLModel, table=True):
    """A run that ended without finishing its job (0004); written with the requeue."""

    __tablename__ = "job_attempts"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    attempt: int
    pool: str
    started_at: datetime = Field(sa_column=_time())
    ended_at: datetime = Field(sa_column=_time(index=True))
    end_reported: bool
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    done_h: float = 0.0
    gpu_kwh: float | None = None
    energy_meter: str | None = None


class PlanRow(SQLModel, table=True):
    __tablename__ = "plans"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=_time(index=True))
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
    unplanned_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    details_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class PlacementRow(SQLModel, table=True):
    __tablename__ = "placements"
    __table_args__ = (UniqueConstraint("plan_id", "job_id", name="uq_placements_plan_job"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plans.id", index=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    pool: str
    start: datetime = Field(sa_column=_time())
    end: datetime = Field(sa_column=_time())
    segments_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    units: float
    energy_kwh: float
    kg_co2e: float
    embodied_kg: float = 0.0
    cost_usd: float
    explanation_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class ActionRow(SQLModel, table=True):
    """An executor action: recorded as an intent before it runs and a result after (0002).

    The unique `key` makes an action happen once: a restart that finds an intent without a result
    repeats it through the executor's idempotent path, never as a second job.
    """

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("key", name="uq_actions_key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str
    job_id: int = Field(foreign_key="jobs.id", index=True)
    kind: str
    executor: str
    attempt: int
    plan_id: int | None = None
    payload_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    state: str = Field(index=True)  # intent | done | failed
    result_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_time())
    finished_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class ForecastRow(SQLModel, table=True):
    """A cached carbon-intensity series (forecast with its issue time, or history)."""

    __tablename__ = "forecasts"
    __table_args__ = (
        Index("ix_forecasts_lookup", "zone", "provider", "kind", "issued_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    zone: str
    provider: str
    kind: str  # forecast | history
    signal: str = "average"  # average | marginal
    issued_at: datetime = Field(sa_column=_time())
    fetched_at: datetime = Field(sa_column=_time())
    start: datetime = Field(sa_column=_time())
    step_s: int
    values_json: str = Field(sa_column=Column(Text, nullable=False))
    flags_json: str = Field(default="", sa_column=Column(Text, nullable=False))
