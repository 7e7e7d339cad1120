"""learnloop gc: apply a model's retention policy now (or, with --dry-run, show what it would
remove), with the bytes freed."""

from __future__ import annotations

from typing import Annotated

import typer

from learnloop.cli.common import ArtifactOpt, DbOpt, HomeOpt, ModelOpt, console, open_services, settings_for
from learnloop.cli.tables import Table


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def gc(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Prune old versions' artifacts and caches per the model's retention policy."""
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        report = services.retention.apply(model, dry_run=dry_run, actor="cli")
    if as_json:
        import orjson

        body = {
            "model": report.model,
            "dry_run": report.dry_run,
            "bytes_freed": report.bytes_freed,
            "protected": list(report.protected),
            "pruned": [
                {"version": p.pruning.version, "status": p.pruning.status, "action": p.pruning.action,
                 "reason": p.pruning.reason, "bytes": p.bytes_freed, "files": list(p.files)}
                for p in report.pruned
            ],
        }  # fmt: skip
        console.print_json(orjson.dumps(body).decode())
        return
    if not report.pruned:
        console.print(f"model {model!r}: nothing to prune (protected: {list(report.protected)})")
        return
    table = Table(title=f"{model}: {'would be pruned (dry run)' if dry_run else 'pruned'}")
    for column in ("version", "status", "action", "why", "freed"):
        table.add_column(column, justify="right" if column in ("version", "freed") else "left")
    for p in report.pruned:
        table.add_row(str(p.pruning.version), p.pruning.status, p.pruning.action, p.pruning.reason, _mib(p.bytes_freed))
    console.print(table)
    verb = "would free" if dry_run else "freed"
    console.print(f"{len(report.pruned)} version(s), {verb} {_mib(report.bytes_freed)} ({report.bytes_freed} bytes)")
