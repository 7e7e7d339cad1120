"""learnloop keys create | list | revoke."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from learnloop.cli.common import DbOpt, HomeOpt, actor, console, open_services, settings_for
from learnloop.cli.tables import Table
from learnloop.domain import Scope

app = typer.Typer(help="Scoped API keys: who may predict, give feedback, read, label or administer.",
                  no_args_is_help=True)  # fmt: skip
NameArg = Annotated[str, typer.Argument(help="The key's name (learnloop keys list).")]


def create(
    home: HomeOpt,
    database_url: DbOpt = None,
    name: Annotated[str, typer.Option("--name", help="Its name; events name it as the actor (key:NAME).")] = "",
    scope: Annotated[
        list[Scope] | None,
        typer.Option("--scope", help="What it may do, repeatable: predict, feedback, read, label, admin."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only this model, repeatable (default: every model).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="It stops working after this long: 90d, 12h, 30m.")
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option("--rate", help="Its request rate: 200/s, 6000/m, 50/10s (default: the server's --rate-limit)."),
    ] = None,
) -> None:
    """Create a key; prints it once (only its hash is stored).

    \b
    Example:
      learnloop keys create --name app --scope predict --scope feedback --model sentiment --expires 90d --rate 200/s
    """
    from learnloop.access import parse_duration  # the database library, only now
    from learnloop.domain import parse_rate

    expires_in = parse_duration(expires) if expires else None
    key_rate = parse_rate(rate) if rate else None
    with open_services(settings_for(home, database_url), create=True) as services:  # keys before models
        key, secret = services.access.create(
            name, scope or [], models=model or [], expires_in=expires_in, rate=key_rate, actor=actor()
        )
    scopes = ", ".join(key.scopes)
    console.print(
        f"[green]key {key.name} created[/] ({key.prefix}): {scopes}; models: {escape(', '.join(key.models)) or '*'}"
        + (f"; rate: {key.rate}" if key.rate else "")
    )
    console.print("the key (shown once; send it as X-API-Key or Authorization: Bearer):", markup=False)
    typer.echo(secret)


def list_keys(
    home: HomeOpt,
    database_url: DbOpt = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="List the revoked keys too.")] = False,
) -> None:
    """The keys: name, prefix, scopes, models, expiry (never the secret)."""
    with open_services(settings_for(home, database_url)) as services:
        keys = services.access.list_keys(include_revoked=revoked)
    table = Table(title="keys")
    for column in ("name", "prefix", "scopes", "models", "rate", "created", "expires", "revoked", "by"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            k.name,
            k.prefix,
            ", ".join(k.scopes),
            escape(", ".join(k.models)) or "*",
            str(k.rate) if k.rate else "",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "never",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            escape(k.created_by),
        )
    console.print(table)


def revoke(name: NameArg, home: HomeOpt, database_url: DbOpt = None) -> None:
    """Revoke a key: it stops working (on running servers within seconds), its dashboard
    sessions end."""
    with open_services(settings_for(home, database_url)) as services:
        key = services.access.revoke(name, actor=actor())
    console.print(f"key {key.name} ({key.prefix}) revoked")


app.command()(create)
app.command("list")(list_keys)
app.command()(revoke)
