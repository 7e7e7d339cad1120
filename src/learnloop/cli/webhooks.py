"""learnloop webhooks add | list | remove | deliveries | test."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from learnloop.cli.common import DbOpt, HomeOpt, console, fail, open_services, settings_for
from learnloop.cli.tables import Table
from learnloop.domain import DEFAULT_KINDS, DeliveryStatus
from learnloop.notify.base import masked_url

app = typer.Typer(help="Webhooks that receive events (signed JSON or Slack messages).", no_args_is_help=True)
IdArg = Annotated[int, typer.Argument(help="Webhook id (learnloop webhooks list).")]


def add(
    url: Annotated[str, typer.Argument(help="http(s) URL that receives a POST per event.")],
    home: HomeOpt,
    database_url: DbOpt = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model's events.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", help=f"Event kind to send, repeatable; '*' for all (default: {', '.join(DEFAULT_KINDS)})."
        ),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="json, or slack (a Slack-compatible body).")] = "json",
    secret: Annotated[str | None, typer.Option("--secret", help="HMAC key (default: generated).")] = None,
) -> None:
    """Register a webhook; prints its secret once."""
    with open_services(settings_for(home, database_url)) as services:
        hook = services.notify.add_webhook(url, model=model, kinds=kind or (), format=format, secret=secret)
        console.print(f"[green]webhook {hook.id} added[/]: {escape(hook.url)} ({', '.join(hook.effective_kinds)})")
        console.print(f"secret (shown once; verify X-Learnloop-Signature with it): {hook.secret}", markup=False)


def list_webhooks(home: HomeOpt, database_url: DbOpt = None) -> None:
    """The registered webhooks (secrets are never shown again)."""
    with open_services(settings_for(home, database_url)) as services:
        table = Table(title="webhooks")
        for column in ("id", "url", "model", "kinds", "format", "pending", "created"):
            table.add_column(column)
        for w in services.notify.list_webhooks():
            pending = len(services.notify.deliveries(w.id, 500, DeliveryStatus.PENDING))
            table.add_row(
                str(w.id),
                escape(masked_url(w.url)),
                w.model or "*",
                ", ".join(w.kinds) if w.kinds else "default",
                w.format,
                str(pending),
                f"{w.created_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)


def remove(webhook_id: IdArg, home: HomeOpt, database_url: DbOpt = None) -> None:
    """Stop delivering to a webhook (its delivery history stays)."""
    with open_services(settings_for(home, database_url)) as services:
        services.notify.remove_webhook(webhook_id)
        console.print(f"webhook {webhook_id} removed")


def deliveries(
    webhook_id: IdArg,
    home: HomeOpt,
    database_url: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
) -> None:
    """A webhook's deliveries, newest first: status, attempts, the last answer or error."""
    if not 1 <= limit <= 500:
        fail("--limit must be between 1 and 500")
    with open_services(settings_for(home, database_url)) as services:
        table = Table(title=f"deliveries of webhook {webhook_id}")
        for column in ("id", "event", "kind", "model", "status", "attempts", "code", "next attempt", "error"):
            table.add_column(column)
        for d in services.notify.deliveries(webhook_id, limit):
            pending = d.status == DeliveryStatus.PENDING and d.next_attempt_at is not None
            table.add_row(
                str(d.id),
                str(d.event_id),
                d.event_kind or "",
                d.event_model or "",
                d.status.value,
                str(d.attempts),
                str(d.last_status_code or ""),
                f"{d.next_attempt_at:%m-%d %H:%M:%S}" if pending and d.next_attempt_at else "",
                escape(d.last_error or ""),
            )
        console.print(table)


def test(webhook_id: IdArg, home: HomeOpt, database_url: DbOpt = None) -> None:
    """Send a test event now and say how the receiver answered (exit 1 if not delivered)."""
    with open_services(settings_for(home, database_url)) as services:
        outcome = services.notify.send_test(webhook_id, actor="cli")
        if not outcome.delivered:
            fail(f"test delivery {outcome.outcome.value}: {outcome.error or outcome.status_code}")
        console.print(f"[green]delivered[/] (HTTP {outcome.status_code})")


app.command()(add)
app.command("list")(list_webhooks)
app.command()(remove)
app.command()(deliveries)
app.command()(test)
