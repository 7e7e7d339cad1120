"""version erasures: marks of erased subjects' data in their own column, not in metrics

A version's ``metrics`` are what was measured when it was trained; an erasure of subjects'
data from its snapshot happens later. Existing marks (``metrics["erasures"]``) move to the new
``erasures`` column.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("metrics", sa.JSON),
    sa.column("erasures", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("erasures", sa.JSON(), nullable=True))
    bind = op.get_bind()
    for row in bind.execute(sa.select(versions.c.id, versions.c.metrics)).all():
        metrics = dict(row.metrics or {})
        if "erasures" in metrics:
            marks = metrics.pop("erasures")
            bind.execute(sa.update(versions).where(versions.c.id == row.id).values(metrics=metrics, erasures=marks))


def downgrade() -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(versions.c.id, versions.c.metrics, versions.c.erasures)).all():
        if row.erasures:
            metrics = {**(row.metrics or {}), "erasures": row.erasures}
            bind.execute(sa.update(versions).where(versions.c.id == row.id).values(metrics=metrics))
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("erasures")
