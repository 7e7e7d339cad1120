"""learnloop init | delete | versions | status | events | promote | rollback | config | export."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    ModelOpt,
    NewModelOpt,
    actor,
    console,
    err_console,
    fail,
    open_services,
    parse_assignments,
    pct,
    settings_for,
    write_file,
)
from learnloop.cli.jobs import note as job_note
from learnloop.cli.jobs import status_text as job_status
from learnloop.cli.metrics_view import num, version_tables
from learnloop.cli.tables import Table
from learnloop.config import Settings
from learnloop.domain import DEFAULT_FAMILY, DEFAULT_TASK, SERVER_TRAIL
from learnloop.errors import LearnloopError
from learnloop.ids import short_id

if TYPE_CHECKING:  # the services and what they use load when a command opens them
    from learnloop.domain import Event, ModelVersion, Rollout
    from learnloop.models import CreatedModel
    from learnloop.monitoring.performance import Performance
    from learnloop.services import Services


def init(
    home: HomeOpt,
    model: NewModelOpt,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="CSV, TSV or JSONL file: labelled texts (classification), or prompt/response rows (generation: "
            "version 1 is a LoRA adapter fitted on them).",
        ),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Column (or JSON field) holding the text.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="Column (or JSON field) holding the label.")
    ] = None,
    prompt_column: Annotated[
        str | None, typer.Option("--prompt-column", help="generation: column (or JSON field) of the prompt.")
    ] = None,
    response_column: Annotated[
        str | None,
        typer.Option("--response-column", help="generation: column (or JSON field) of the response to learn."),
    ] = None,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, tsv or jsonl (default: from the extension)."),
    ] = None,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="The file has no header row; columns are 0, 1, ...")
    ] = False,
    quoting: Annotated[str | None, typer.Option("--quoting", help="TSV quoting: none (default) or csv.")] = None,
    label_names: Annotated[
        str | None,
        typer.Option(
            "--label-names",
            help="Names for the label values of --data, VALUE=NAME pairs (0=negative,1=positive): the model "
            "learns, answers and takes feedback in the names.",
        ),
    ] = None,
    family: Annotated[
        str, typer.Option("--family", help="Model family key (learnloop families lists them).")
    ] = DEFAULT_FAMILY,
    golden_fraction: Annotated[
        float, typer.Option("--golden-fraction", help="Share held out as the golden set.")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    retrain_every: Annotated[
        int | None,
        typer.Option(
            "--retrain-every", help="New training events per retrain (default 200; 100 for a generative model)."
        ),
    ] = None,
    cooldown: Annotated[float | None, typer.Option("--cooldown", help="Seconds between automatic retrains.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="KEY=VALUE family parameter (value as JSON), repeatable; learnloop families lists them."
        ),
    ] = None,
    task: Annotated[str, typer.Option("--task", help="classification or generation.")] = DEFAULT_TASK,
    backend: Annotated[
        str,
        typer.Option("--backend", help="generation: local (in-process) or external (answers made elsewhere, logged)."),
    ] = "local",
    system_prompt: Annotated[
        str | None, typer.Option("--system-prompt", help="generation: the system prompt the model answers under.")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="generation (local): the base model, smollm2-135m-instruct (default) or a local Hugging Face "
            "causal-LM directory.",
        ),
    ] = None,
) -> None:
    """Create a model and make version 1 champion (all or nothing): a classifier trained on
    labelled data; a generative model served in process (--task generation) whose version 1 is
    its base, or a LoRA adapter fitted on the prompt/response rows of --data; or (--task
    generation --backend external) one whose answers are made elsewhere and logged with POST
    /v1/models/MODEL/generations.

    \b
    Examples:
      learnloop init --model sentiment --data reviews.csv --text-column text --label-column label
      learnloop init --model sentiment --data yelp.tsv --no-header --text-column 0 \\
          --label-column 1 --label-names 0=negative,1=positive
      learnloop init --model innkeeper --task generation --system-prompt "You are an innkeeper."
    """
    overrides: dict[str, Any] = {}
    if retrain_every is not None:
        overrides["retrain_every"] = retrain_every
    if cooldown is not None:
        overrides["cooldown_seconds"] = cooldown
    params = parse_assignments(param or [], "--param")
    if task == DEFAULT_TASK:  # a classifier's family and parameters are checked before a home or data is touched
        _check_family_params(family, params)
    if system_prompt is not None:
        params["system_prompt"] = system_prompt
    if base is not None:
        params["base"] = base
    from learnloop.models import FileSource, NewModel

    request = NewModel(
        name=model,
        family=family,
        params=params,
        policy=overrides,
        task=task,
        golden_fraction=golden_fraction,
        seed=seed,
        backend=backend,
    )
    source = None
    generative = task != DEFAULT_TASK
    if generative and (text_column or label_column):
        fail("a generative model reads prompt/response rows: give --prompt-column and --response-column")
    if not generative and (prompt_column or response_column):
        fail("--prompt-column and --response-column are for generative models (--task generation)")
    if label_names is not None and (generative or data is None):
        fail("--label-names names the label values of a classifier's --data")
    if data is not None:
        columns = (prompt_column or "prompt", response_column or "response") if generative else None
        source = FileSource(
            data,
            *(columns or (text_column or "text", label_column or "label")),
            fmt=fmt,
            header=not no_header,
            quoting=quoting,
            label_names=_label_names(label_names),
        )
    elif task == DEFAULT_TASK:
        fail("a classification model is created from labelled data: give --data, --text-column and --label-column")
    settings = settings_for(home, database_url, artifact_url=artifact_url, isolate_training=False)
    with (
        _home_removed_on_failure(settings),
        open_services(settings, create=True) as services,
        progress_bar() as progress,
    ):
        step = progress.add_task("checking", total=1.0)
        created = services.creation.create(
            request, source, actor=actor(), progress=lambda f, msg: progress.update(step, completed=f, description=msg)
        )
    _print_created(created)


def _check_family_params(family: str, params: dict[str, Any]) -> None:
    from learnloop.families import get_family

    try:
        get_family(family).resolve_params(params)
    except LearnloopError as exc:
        fail(exc.message)


def _label_names(text: str | None) -> dict[str, str]:
    from learnloop.datasets import parse_label_names

    try:
        return {} if text is None else parse_label_names(text)
    except LearnloopError as exc:
        fail(exc.message)


@contextmanager
def _home_removed_on_failure(settings: Settings) -> Iterator[None]:
    """What this command added to a home that was none before goes again when it fails: a
    failed init leaves nothing (a home that held models is left as it was)."""
    home = settings.home
    existed, fresh = home.exists(), not settings.home_exists()
    before = set(home.iterdir()) if existed and fresh and home.is_dir() else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(home, ignore_errors=True)
        elif fresh and home.is_dir():
            for added in set(home.iterdir()) - before:
                if added.is_dir():
                    shutil.rmtree(added, ignore_errors=True)
                else:
                    added.unlink(missing_ok=True)
        raise


def progress_bar() -> Progress:
    """A transient bar of a long command's work (off when the output is not a terminal)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _print_created(created: CreatedModel) -> None:
    data, version = created.data, created.version
    if created.model.task != DEFAULT_TASK:
        name = created.model.name
        if version.family == "external":
            how = f"log its answers with POST /v1/models/{name}/generations"
        else:
            fitted = ""
            if version.artifact_uri:
                m, skipped = version.metrics, ", ".join(f"{n} {reason}" for reason, n in data.skipped.items() if n)
                seconds, loss = float(m.get("seconds") or 0), num(m.get("train_loss"))
                fitted = (
                    f"a LoRA adapter fitted on {m.get('rows')} rows of {data.source}"
                    + (f" (skipped {skipped})" if skipped else "")
                    + f" in {m.get('steps')} steps, {seconds:.1f}s, train loss {loss}; "
                )
            how = (
                f'{fitted}base {version.params.get("base")}; try it with learnloop generate --model {name} "Hello", '
                f"or serve it (POST /v1/models/{name}/generate, /openai/v1/chat/completions)"
            )
        console.print(
            f"[green]model {name!r} version {version.version} is champion[/] "
            f"({created.model.task}, family {version.family}): {how}"
        )
        return
    labels = ", ".join(data.labels[:20]) + (f", ... ({len(data.labels) - 20} more)" if len(data.labels) > 20 else "")
    skipped = ", ".join(f"{n} {reason}" for reason, n in data.skipped.items() if n)
    console.print(
        f"read [bold]{data.rows}[/] examples from {data.source} ({len(data.labels)} labels: {labels})"
        + (f"; skipped {skipped}" if skipped else "")
    )
    console.print(f"golden set: {len(data.golden)} held out; training on {len(data.train)}")
    golden = version.metrics["golden"]
    low, high = golden.get("accuracy_ci95") or (None, None)
    console.print(
        f"[green]model {created.model.name!r} version {version.version} is champion[/]: golden accuracy "
        f"{pct(golden['accuracy'])} (95% CI {pct(low)}-{pct(high)}, n={golden['n']}), "
        f"macro-F1 {golden['macro_f1']:.3f}, trained in {version.train_seconds or 0:.2f}s"
    )


def delete(
    home: HomeOpt,
    model: NewModelOpt,
    database_url: DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the model and all it holds are deleted.")] = False,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
) -> None:
    """Delete a model with its versions, predictions, feedback, snapshots, rollouts, jobs, drift
    checks and artifacts (the audit trail keeps its events and records the deletion)."""
    if not yes:
        fail(f"deleting model {model!r} removes all it holds, for good; pass --yes to confirm")
    with open_services(settings_for(home, database_url)) as services:
        report = services.deletion.delete(model, actor=actor(), reason=reason or "deleted from the CLI")
    rows = report.rows
    console.print(
        f"[yellow]model {model!r} deleted[/]: {len(report.versions)} versions, {rows['predictions']} predictions, "
        f"{rows['feedback']} feedback events, {rows['snapshots']} snapshots, {report.artifacts} artifacts removed"
    )


def versions(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    version: Annotated[
        int | None,
        typer.Option("--version", help="Show every metric of this version, with its intervals."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the versions (or the one) as the API answers a version.")
    ] = False,
) -> None:
    """List a model's versions with their metrics and verdicts (or one version in full); a
    version the retention policy pruned (``learnloop gc``) is marked, with the date.

    \b
    Examples:
      learnloop versions
      learnloop versions --model sentiment --version 2   # every metric and every gate check
      learnloop versions --json                          # as GET /v1/models/{model}/versions/{v}
    """
    with open_services(settings_for(home, database_url)) as services:
        chosen = [services.registry.version(model, version)] if version is not None else None
        rows = chosen or services.registry.versions(model)
        if as_json:
            _print_versions_json(rows, one=chosen is not None)
            return
        if chosen:
            show_version(chosen[0])
            return
        table = Table(
            title=f"versions of {model}",
            caption="F1 (macro), AUC and ECE on the golden set; created in UTC; why each version is where it is: below",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for column in ("v", "status", "golden\nacc", "F1", "AUC", "ECE", "recent\nacc", "parent", "created"):
            table.add_column(column)
        for v in rows:
            golden = v.metrics.get("golden", {})
            table.add_row(
                str(v.version),
                v.status.value,
                pct(golden.get("accuracy")),
                num(golden.get("macro_f1")),
                num(golden.get("roc_auc")),
                num(golden.get("ece")),
                pct(v.metrics.get("recent", {}).get("accuracy")),
                str(v.parent_version or "-"),
                v.created_at.strftime("%m-%d %H:%M"),
            )
        console.print(table)
        # The reasons, and what the retention policy did, under the table, one line each: a
        # column beside nine others would be squeezed to a few characters on an 80-column terminal.
        for v in rows:
            notes = [note for note in (_retention_note(v), escape(_version_reason(v))) if note]
            if notes:
                console.print(f"[bold]v{v.version}[/] " + "; ".join(notes), soft_wrap=True)


def _print_versions_json(rows: list[ModelVersion], *, one: bool) -> None:
    from pydantic import TypeAdapter

    from learnloop.api.schemas import VersionPublic

    public = [VersionPublic.of(v) for v in rows]
    body = public[0].model_dump_json() if one else TypeAdapter(list[VersionPublic]).dump_json(public).decode()
    console.print_json(body)


def _retention_note(v: ModelVersion) -> str:
    """What the retention policy did to the version (markup), or "" when nothing."""
    if v.artifacts_pruned_at is not None:
        return f"[yellow]artifacts removed {v.artifacts_pruned_at:%Y-%m-%d %H:%M} UTC[/] by the retention policy"
    if v.caches_dropped_at is not None:
        return f"caches dropped {v.caches_dropped_at:%Y-%m-%d %H:%M} UTC by the retention policy"
    return ""


def _version_reason(v: ModelVersion) -> str:
    """Why the version is where it is, the deciding words first: a gate's verdict by its
    headline (every check: ``versions --version N``), a later change by its own reason."""
    reason = v.status_reason or ""
    if v.verdict:
        from learnloop.evaluation.headline import verdict_headline

        headline = verdict_headline(v.verdict)
        if reason.startswith(headline):
            return f"{headline} (every check: learnloop versions --version {v.version})"
    return reason


def privacy_line(privacy: dict[str, Any]) -> str:
    """A differentially private version's guarantee, in one line."""
    if not privacy.get("private"):
        return f"trained by {privacy['mechanism']} without noise: not private (target_epsilon null)"
    return (
        f"differential privacy: epsilon {privacy['epsilon']:.3g}, delta {privacy['delta']:.2g} per "
        f"{privacy['unit']} ({privacy['mechanism']}, {privacy['accountant']} accountant, noise multiplier "
        f"{privacy['noise_multiplier']:.3g}, {privacy['steps']} steps, clip {privacy['max_grad_norm']:g}"
        + (", reproducible noise: not for production" if privacy.get("reproducible_noise") else "")
        + ")"
    )


def show_version(v: ModelVersion) -> None:
    console.rule(f"[bold]{v.model}[/] version {v.version}: {v.status.value}")
    console.print(
        f"family {v.family}, parent {v.parent_version or '-'}, snapshot {(v.snapshot_hash or '-')[:12]}, "
        f"{v.metrics.get('train_examples', '-')} training examples"
        + (f", trained in {v.train_seconds:.2f}s" if v.train_seconds is not None else "")
    )
    if v.status_reason:
        console.print(f"reason: {escape(v.status_reason)}")
    if v.artifacts_pruned_at is not None:
        console.print(
            f"{_retention_note(v)}: it cannot be served, promoted, compared or explained again; its record and "
            "metrics stay",
            soft_wrap=True,
        )
    elif v.caches_dropped_at is not None:
        console.print(f"{_retention_note(v)}: it still loads", soft_wrap=True)
    counts = v.metrics.get("snapshot_counts") or {}
    augmented = counts.get("augmented")
    if augmented:
        console.print(
            f"synthetic training rows: {counts.get('train_synthetic', 0)} by {augmented['method']} "
            f"(seed {augmented['seed']}) for classes under {augmented['min_examples']} rows: "
            + (", ".join(f"{escape(label)} {n}" for label, n in augmented["by_label"].items()) or "none thin")
        )
    privacy = v.metrics.get("privacy")
    if privacy:
        console.print(privacy_line(privacy))
    selection = v.metrics.get("selection")
    if selection:
        console.print(f"chosen among {len(selection['candidates'])} candidates: {escape(selection['reason'])}")
    for table in version_tables(v):
        console.print(table)


def status(home: HomeOpt, model: ModelOpt, database_url: DbOpt = None) -> None:
    """One screen: champion, live rollout, online accuracy, drift, policy, jobs, recent events.

    \b
    Examples:
      learnloop status
      LEARNLOOP_HOME=./learnloop-demo/home learnloop status --model sentiment
    """
    from learnloop.tasks import get_task

    with open_services(settings_for(home, database_url)) as services:
        o = services.registry.overview(model)
        perf = services.performance.performance(model)
        jobs = services.jobs.list(model, 5)
        champion = next((v for v in o.versions if v.version == o.deployment.champion_version), None)
        console.rule(f"[bold]{model}[/] ({get_task(o.model.task).describe(o.model)}: {', '.join(o.model.labels)})")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        if champion:
            grid.add_row(
                "champion",
                f"version [bold]{champion.version}[/], golden accuracy "
                f"{pct(champion.metrics.get('golden', {}).get('accuracy'))}"
                + (
                    f"; previous {o.deployment.previous_version} kept loaded for rollback"
                    if o.deployment.previous_version
                    else ""
                ),
            )
        else:
            grid.add_row("champion", "[red]none[/]")
        statuses = Counter(v.status.value for v in o.versions)
        removed = sum(v.artifacts_pruned_at is not None for v in o.versions)
        by_status = ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))
        pruned = f"; {removed} with artifacts removed by the retention policy" if removed else ""
        grid.add_row("versions", f"{len(o.versions)} ({by_status}){pruned}")
        grid.add_row("rollout", _rollout_line(o.rollout) if o.rollout else "none running")
        grid.add_row("online accuracy", _performance_line(perf))
        grid.add_row("drift", _drift_line(services, model))
        grid.add_row(
            "feedback",
            f"{sum(o.feedback_counts.values())} events " + (str(o.feedback_counts) if o.feedback_counts else ""),
        )
        p = o.model.policy
        grid.add_row(
            "policy",
            f"retrain every {p.triggers.retrain_every} training events (cooldown {p.triggers.cooldown_seconds:.0f}s)"
            + (f", on schedule '{p.triggers.retrain_schedule}'" if p.triggers.retrain_schedule else "")
            + f"; rollout {p.rollout.strategy}; golden margin {pct(p.gate.golden_margin)}, alpha {p.gate.alpha}",
        )
        console.print(grid)
        if jobs:
            table = Table(title="last jobs")
            for column in ("job", "kind", "status", "progress", "attempts", "requested by", "message"):
                table.add_column(column)
            for j in jobs:
                table.add_row(
                    short_id(j.id),
                    j.kind,
                    job_status(j),
                    f"{j.progress:.0%}",
                    str(j.attempts),
                    j.requested_by,
                    job_note(j),
                )
            console.print(table)
        if o.recent_events:
            console.print(events_table(o.recent_events, "recent events"))


def _rollout_line(r: Rollout) -> str:
    test = r.stats.get("test") or {}
    line = f"{r.id}: {r.strategy.value} of version {r.version}, {r.status.value}, share {r.share:.0%}"
    if test:
        low, high = 100 * test["ci_low"], 100 * test["ci_high"]
        line += (
            f"; live B - A {100 * test['estimate']:+.1f} pts [{low:+.1f}, {high:+.1f}] (n={test['n_a']}/{test['n_b']})"
        )
    if r.stats.get("decision"):
        line += f"; last look: {r.stats['decision']}"
    return line


def _performance_line(perf: Performance) -> str:
    online = perf.online
    parts = []
    if online.accuracy is not None:
        parts.append(
            f"{pct(online.accuracy)} [{pct(online.ci_low)}, {pct(online.ci_high)}] over {online.n} judged answers"
        )
        if online.macro_f1 is not None and online.macro_f1_ci is not None:
            low, high = online.macro_f1_ci
            parts.append(f"macro-F1 {online.macro_f1:.3f} [{low:.3f}, {high:.3f}]")
    else:
        parts.append("no judged answers yet")
    if perf.expected_accuracy is not None:
        ece = f", golden ECE {perf.golden_ece:.3f}" if perf.golden_ece is not None else ""
        parts.append(f"expected from confidence {pct(perf.expected_accuracy)} (n={perf.expected_n}{ece})")
    if perf.alarm:
        parts.append(f"[red]ALARM: {perf.reason}[/]")
    rating = perf.rating
    if rating.mean is not None:
        interval = f" [{rating.ci_low:.2f}, {rating.ci_high:.2f}]" if rating.ci_high is not None else ""
        parts.append(f"mean rating {rating.mean:.2f}{interval} over {rating.n} rated answers")
        if rating.alarm:
            parts.append(f"[red]ALARM: {rating.reason}[/]")
    return "; ".join(parts)


def _drift_line(services: Services, model: str) -> str:
    check = services.drift.latest(model)
    if check is None:
        return "not checked yet (learnloop drift --now)"
    line = f"{check.message} ({check.created_at:%m-%d %H:%M:%S})"
    return f"[red]{line}[/]" if check.drifted else line


def events_table(events: list[Event], title: str) -> Table:
    table = Table(title=title)
    for column in ("time", "event", "version", "actor"):
        table.add_column(column)
    table.add_column("reason")
    for e in events:
        table.add_row(
            e.created_at.strftime("%m-%d %H:%M:%S") if e.created_at else "",
            e.kind,
            str(e.version or ""),
            escape(e.actor),
            escape(e.reason or ""),
        )
    return table


def events(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="How many of the newest events.")] = 50,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these kinds (e.g. promoted), repeatable.")
    ] = None,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit",
            is_eager=True,
            help="The server's own trail instead: admin actions, keys, failed authentications (--model '*').",
        ),
    ] = False,
) -> None:
    """The model's audit trail, newest first: retrains, verdicts, promotions, rollbacks, policy changes.

    \b
    Examples:
      learnloop events --model sentiment --kind promoted --kind rolled_back
      learnloop events --audit --kind auth_failure --kind auth_failure_burst
    """
    if not 1 <= limit <= 500:
        fail("--limit must be between 1 and 500")
    model = SERVER_TRAIL if audit else model
    with open_services(settings_for(home, database_url)) as services:
        found = services.registry.events(model, limit, kinds=kind or None)
        if kind:
            _warn_unknown_kinds(kind, {e.kind for e in services.registry.events(model, 500)})
        title = "the server's audit trail" if model == SERVER_TRAIL else f"events of {model}"
        console.print(events_table(found, title))


def _warn_unknown_kinds(kinds: list[str], present: set[str]) -> None:
    """A ``--kind`` no event of the model has (a typo: ``promote`` for ``promoted``) is said, with
    the kinds there are, rather than left to look like an empty trail."""
    for unknown in (k for k in kinds if k not in present):
        err_console.print(
            f"[yellow]warning:[/] no {escape(unknown)!r} event among the newest 500; "
            f"kinds there: {escape(', '.join(sorted(present)) or 'none')}",
            soft_wrap=True,
        )


def promote(
    version: Annotated[int, typer.Argument(help="Version number to make champion.")],
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    force: Annotated[bool, typer.Option("--force", help="Promote a version the offline gate rejected.")] = False,
) -> None:
    """Make a version champion (the current one stays loaded for rollback)."""
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        d = services.registry.promote(model, version, actor=actor(), reason=reason or "manual promotion", force=force)
        console.print(
            f"[green]version {d.champion_version} of {model!r} is champion[/] (previous: {d.previous_version})"
        )


def rollback(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
) -> None:
    """Take the newest change off traffic, now: a running rollout's challenger, else the champion."""
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        live = services.rollouts.active(model)
        d = services.registry.rollback(model, actor=actor(), reason=reason or "manual rollback")
        if live is not None:
            console.print(
                f"[yellow]rolled back: rollout {live.id} ended, version {live.version} is off traffic; "
                f"version {d.champion_version} serves[/]"
            )
        else:
            console.print(f"[yellow]rolled back: version {d.champion_version} of {model!r} is champion again[/]")


def config(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE policy change (value as JSON), repeatable."),
    ] = None,
) -> None:
    """Show or change a model's policy."""
    changes = parse_assignments(set_ or [])
    with open_services(settings_for(home, database_url)) as services:
        try:
            m = (
                services.registry.update_policy(model, changes, actor())
                if changes
                else services.registry.get_model(model)
            )
        except LearnloopError as exc:
            fail(exc.message)
        table = Table(title=f"policy of {model}")
        table.add_column("key")
        table.add_column("value")
        for key, value in m.policy.to_dict().items():
            table.add_row(key, json.dumps(value))
        console.print(table)


def export(
    home: HomeOpt,
    model: ModelOpt,
    out: Annotated[Path, typer.Option("--out", help="File to write (.jsonl or .csv).")],
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    version: Annotated[
        int | None,
        typer.Option(
            "--version", help="Default: the champion (a generative model: what its next version would train on)."
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl or csv (default: from --out); a generative model: trl-sft, trl-dpo, trl-kto, "
            "openai-chat, openai-dpo or bedrock.",
        ),
    ] = None,
    part: Annotated[
        str, typer.Option("--part", help="A generative model's train part or its held_out part (the gate's).")
    ] = "train",
) -> None:
    """Write the curated data a version was trained on (JSON Lines or CSV), for other tools; for a
    generative model, in a trainer's format."""
    chosen = fmt or out.suffix.lstrip(".").lower()
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        data = services.registry.training_data(model, version, chosen, part)
    write_file(out, data)
    # Counted as parsed (a CSV field or a JSON string may hold a line break of its own).
    rows = len(list(csv.reader(io.StringIO(data.decode())))) - 1 if chosen == "csv" else data.count(b"\n")
    console.print(f"wrote {rows} training examples to {out}")
