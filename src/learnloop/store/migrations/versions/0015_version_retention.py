"""version retention: when a version's artifacts were removed, or its caches dropped

The retention policy (``learnloop.retention``) removes the artifacts of old rejected and
retired versions and drops re-creatable caches (a tfidf-logreg version's term counts) of
versions that no longer serve. The version's record, metrics and verdict stay; these columns
say what is gone and since when, so a request for a removed artifact is answered 409
``artifact_removed`` and a sweep does not touch a version twice.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("artifacts_pruned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("caches_dropped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("caches_dropped_at")
        batch_op.drop_column("artifacts_pruned_at")
