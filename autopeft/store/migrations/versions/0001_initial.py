"""Initial schema: autopeft_studies and autopeft_trials.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than importing the models, so it keeps describing revision 0001
after the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "autopeft_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("model", sa.String(512), nullable=False),
        sa.Column("method_space_name", sa.String(255), nullable=False),
        sa.Column("space", JSONType, nullable=False),
        sa.Column("budget", JSONType, nullable=False),
        sa.Column("hardware", JSONType, nullable=False),
        sa.Column("settings", JSONType, nullable=False),
        sa.Column("objectives", JSONType, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_autopeft_studies"),
        sa.UniqueConstraint("name", name="uq_autopeft_studies_name"),
    )
    op.create_table(
        "autopeft_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("learning_rate", sa.Float(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("primary_metric", sa.Float(), nullable=True),
        sa.Column("metrics", JSONType, nullable=False),
        sa.Column("trainable_params", sa.BigInteger(), nullable=True),
        sa.Column("total_params", sa.BigInteger(), nullable=True),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_kind", sa.String(64), nullable=True),
        sa.Column("train_seconds", sa.Float(), nullable=True),
        sa.Column("eval_seconds", sa.Float(), nullable=True),
        sa.Column("examples_per_second", sa.Float(), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=True),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("is_pareto", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("extra", JSONType, nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["autopeft_studies.id"],
            name="fk_autopeft_trials_study_id_autopeft_studies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_autopeft_trials"),
        sa.UniqueConstraint("study_id", "number", name="uq_autopeft_trials_study_id_number"),
    )
    op.create_index("ix_autopeft_trials_study_id_status", "autopeft_trials", ["study_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_autopeft_trials_study_id_status", table_name="autopeft_trials")
    op.drop_table("autopeft_trials")
    op.drop_table("autopeft_studies")
