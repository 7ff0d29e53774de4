"""Per-trial count of dev predictions that did not parse as a label, and the eval count.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Both columns are nullable: trials stored before this revision keep NULL (not recorded).
Batch mode, because SQLite cannot ALTER a table in place (see env.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("autopeft_trials") as batch:
        batch.add_column(sa.Column("unparseable_predictions", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("eval_examples", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("autopeft_trials") as batch:
        batch.drop_column("eval_examples")
        batch.drop_column("unparseable_predictions")
