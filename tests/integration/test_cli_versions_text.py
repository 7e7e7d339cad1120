"""learnloop versions shows a version's reason as written: square brackets in it are text,
never terminal markup (a reason a person typed may hold any)."""

from __future__ import annotations

from typer.testing import CliRunner

from conftest import register_version, uci_rows
from learnloop.cli.main import app
from learnloop.config import Settings
from learnloop.services import Services

REASON = "try [wip] without [/b] the long reviews"


def test_a_reason_with_square_brackets_is_shown_as_written(
    services: Services, settings: Settings, make_model: object
) -> None:
    make_model(services)  # type: ignore[operator]
    version = register_version(services, "m", uci_rows("yelp")[:200], note=REASON).version
    where = ["--home", str(settings.home), "--database-url", settings.database_url, "--model", "m"]
    runner = CliRunner()
    for command in (["versions"], ["versions", "--version", str(version)]):
        shown = runner.invoke(app, [*command, *where], env={"COLUMNS": "300"})
        assert shown.exit_code == 0, shown.output
        assert REASON in shown.output, command


def test_an_event_reason_with_square_brackets_is_shown_as_written(
    services: Services, settings: Settings, make_model: object
) -> None:
    make_model(services)  # type: ignore[operator]
    register_version(services, "m", uci_rows("yelp")[:200], note="candidate")
    services.registry.promote("m", 2, actor="[/ops]", reason=REASON)
    where = ["--home", str(settings.home), "--database-url", settings.database_url, "--model", "m"]
    shown = CliRunner().invoke(app, ["events", *where], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert REASON in shown.output and "[/ops]" in shown.output
