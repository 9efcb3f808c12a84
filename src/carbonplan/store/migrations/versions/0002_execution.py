"""Execution state: attempts, checkpointed progress and executor handles on jobs; the action log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carbonplan.store.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        b.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("done_h", sa.Float(), nullable=False, server_default="0"))
        b.add_column(sa.Column("executor", sa.String(), nullable=True))
        b.add_column(sa.Column("executor_ref", sa.String(), nullable=True))
        b.add_column(sa.Column("ran_pool", sa.String(), nullable=True))
        b.add_column(sa.Column("started_at", UTCDateTime(), nullable=True))
        b.add_column(sa.Column("ended_at", UTCDateTime(), nullable=True))
        b.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("executor", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("key", name="uq_actions_key"),
    )
    op.create_index("ix_actions_job_id", "actions", ["job_id"])
    op.create_index("ix_actions_state", "actions", ["state"])


def downgrade() -> None:
    op.drop_table("actions")
    with op.batch_alter_table("jobs") as b:
        for c in ("exit_code", "ended_at", "started_at", "ran_pool", "executor_ref", "executor",
                  "done_h", "attempt"):
            b.drop_column(c)
