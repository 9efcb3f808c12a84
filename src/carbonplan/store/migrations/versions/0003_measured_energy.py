"""Measured energy on jobs: what the last attempt's GPUs drew (NVML) and how it was read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        b.add_column(sa.Column("gpu_kwh", sa.Float(), nullable=True))
        b.add_column(sa.Column("energy_meter", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        b.drop_column("energy_meter")
        b.drop_column("gpu_kwh")
