"""version status time: when a version last changed status

The retention policy keeps a retired (or rejected) version's artifact for ``keep_retired_days``
(``keep_rejected_days``): counted from when it stopped serving, not from when it was
registered, so a champion that served for months and was replaced yesterday is not removed
today. Versions changed before this column have none; their age is then counted from their
registration, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("status_changed_at")
