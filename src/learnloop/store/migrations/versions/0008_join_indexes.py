"""indexes that keep the online-accuracy join fast at 1M rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch mode): SQLite creates and drops indexes in place.
    op.drop_index("ix_feedback_prediction", table_name="feedback")
    op.create_index("ix_feedback_prediction", "feedback", ["prediction_id", "model"])
    op.create_index("ix_predictions_model_version", "predictions", ["model", "version", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_predictions_model_version", table_name="predictions")
    op.drop_index("ix_feedback_prediction", table_name="feedback")
    op.create_index("ix_feedback_prediction", "feedback", ["prediction_id"])
