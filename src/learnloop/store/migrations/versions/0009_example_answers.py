"""a model's own rows may be a generative model's prompt/response pairs: the answer is text

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.alter_column("label", existing_type=sa.String(128), type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.alter_column("label", existing_type=sa.Text(), type_=sa.String(128), existing_nullable=False)
