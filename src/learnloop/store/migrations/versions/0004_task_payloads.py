"""task payloads: answers and feedback as JSON beside the common columns; models name their task

Predictions and shadow answers keep their common columns (ids, model, version, route,
subject, time, latency, the input text) and hold what the task answered in ``answer`` (JSON
text; classification: ``{"label", "probabilities"}``). Feedback holds what an event says in
``payload`` (``{"label"}``, ``{"thumbs"}``, ``{"rating"}``, ``{"text", "label"}``). A model's
``task`` names its Task plug-in: ``binary`` and ``multiclass`` become ``classification``.
Every existing row is kept and converted in SQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _object(*pairs: str) -> str:
    """A SQL expression building a JSON object from ('key', expression) pairs."""
    args = ", ".join(pairs)
    return f"json_build_object({args})" if _postgres() else f"json_object({args})"


def _json_text(column: str) -> str:
    """A column holding JSON text, as a JSON value inside a built object."""
    return f"{column}::json" if _postgres() else f"json({column})"


def _to_text(expression: str) -> str:
    return f"({expression})::text" if _postgres() else expression


def upgrade() -> None:
    for table in ("predictions", "shadow_predictions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("answer", sa.Text(), nullable=True))
        answer = _object("'label'", "label", "'probabilities'", _json_text("probabilities"))
        op.execute(f"UPDATE {table} SET answer = {_to_text(answer)}")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("answer", existing_type=sa.Text(), nullable=False)
            batch.drop_column("label")
            batch.drop_column("probabilities")

    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    by_kind = {
        "label": _object("'label'", "label"),
        "thumbs": _object("'thumbs'", "thumbs"),
        "rating": _object("'rating'", "rating"),
        "example": _object("'text'", "text", "'label'", "label"),
    }
    for kind, payload in by_kind.items():
        op.execute(f"UPDATE feedback SET payload = {payload} WHERE kind = '{kind}'")
    op.execute(f"UPDATE feedback SET payload = {_object()} WHERE payload IS NULL")
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("payload", existing_type=sa.JSON(), nullable=False)
        for column in ("label", "thumbs", "rating", "text"):
            batch.drop_column(column)

    # (``models`` is never batch-altered: on SQLite that recreates the table, and dropping it
    # would cascade to every version, deployment and rollout.)
    op.execute("UPDATE models SET task = 'classification' WHERE task IN ('binary', 'multiclass')")


def _field(column: str, key: str) -> str:
    return f"({column} ->> '{key}')" if _postgres() else f"json_extract({column}, '$.{key}')"


def downgrade() -> None:
    op.execute(
        "UPDATE models SET task = CASE WHEN "
        + ("json_array_length(labels::json)" if _postgres() else "json_array_length(labels)")
        + " = 2 THEN 'binary' ELSE 'multiclass' END WHERE task = 'classification'"
    )

    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("label", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("thumbs", sa.String(length=4), nullable=True))
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("text", sa.Text(), nullable=True))
    payload = "payload::json" if _postgres() else "payload"
    op.execute(
        f"UPDATE feedback SET label = {_field(payload, 'label')}, thumbs = {_field(payload, 'thumbs')}, "
        f"rating = CAST({_field(payload, 'rating')} AS INTEGER), text = {_field(payload, 'text')}"
    )
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("payload")

    for table in ("predictions", "shadow_predictions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("label", sa.String(length=128), nullable=True))
            batch.add_column(sa.Column("probabilities", sa.Text(), nullable=True))
        answer = "answer::json" if _postgres() else "answer"
        probabilities = (
            f"({answer} -> 'probabilities')::text" if _postgres() else "json_extract(answer, '$.probabilities')"
        )
        op.execute(f"UPDATE {table} SET label = {_field(answer, 'label')}, probabilities = {probabilities}")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("label", existing_type=sa.String(length=128), nullable=False)
            batch.alter_column("probabilities", existing_type=sa.Text(), nullable=False)
            batch.drop_column("answer")
