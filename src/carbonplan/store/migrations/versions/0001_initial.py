"""Initial schema: jobs with their event history, plans with placements, cached forecasts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carbonplan.store.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("command_json", sa.Text(), nullable=True),
        sa.Column("script", sa.String(), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("gpu_types_json", sa.Text(), nullable=False),
        sa.Column("mig", sa.String(), nullable=True),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        sa.Column("checkpoint_every_h", sa.Float(), nullable=True),
        sa.Column("checkpoint_cost_h", sa.Float(), nullable=False),
        sa.Column("pausable", sa.Boolean(), nullable=False),
        sa.Column("spot", sa.Boolean(), nullable=False),
        sa.Column("regions_json", sa.Text(), nullable=False),
        sa.Column("home_region", sa.String(), nullable=True),
        sa.Column("watts", sa.Float(), nullable=True),
        sa.Column("workdir", sa.String(), nullable=True),
        sa.Column("env_json", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("external_id", name="uq_jobs_external_id"),
    )
    op.create_index("ix_jobs_user", "jobs", ["user"])
    op.create_index("ix_jobs_state", "jobs", ["state"])

    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("solver", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("bound", sa.Float(), nullable=False),
        sa.Column("gap", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("n_columns", sa.Integer(), nullable=False),
        sa.Column("slot_h", sa.Float(), nullable=False),
        sa.Column("carbon_price_usd_per_t", sa.Float(), nullable=False),
        sa.Column("unplanned_json", sa.Text(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_plans_created_at", "plans", ["created_at"])

    op.create_table(
        "placements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("pool", sa.String(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("segments_json", sa.Text(), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("energy_kwh", sa.Float(), nullable=False),
        sa.Column("kg_co2e", sa.Float(), nullable=False),
        sa.Column("embodied_kg", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("explanation_json", sa.Text(), nullable=False),
        sa.UniqueConstraint("plan_id", "job_id", name="uq_placements_plan_job"),
    )
    op.create_index("ix_placements_plan_id", "placements", ["plan_id"])
    op.create_index("ix_placements_job_id", "placements", ["job_id"])

    op.create_table(
        "forecasts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("zone", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("signal", sa.String(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("step_s", sa.Integer(), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.Column("flags_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_forecasts_lookup", "forecasts", ["zone", "provider", "kind", "issued_at"])


def downgrade() -> None:
    for table in ("forecasts", "placements", "plans", "job_events", "jobs"):
        op.drop_table(table)
