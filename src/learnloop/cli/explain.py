"""learnloop explain and learnloop weights: why a classifier answered what it did (a text, or a
logged answer by its prediction id), a version's strongest terms per label, and the terms whose
weight moved between two versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.text import Text

from learnloop.cli.common import ArtifactOpt, DbOpt, HomeOpt, ModelOpt, console, fail, open_services, settings_for
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.explanations import ExplainedAnswer, VersionWeights, WeightsDiff

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (as the API answers) instead of tables.")]
TopOpt = Annotated[int, typer.Option("--top", min=1, max=500, help="Terms to show (per label).")]
_HOW = {
    "linear": "exact: each term's share of the label's logit (intercept + terms = score)",
    "occlusion": "approximate: how much the label's probability falls without each word",
}


def explain(
    home: HomeOpt,
    model: ModelOpt,
    text: Annotated[str | None, typer.Option("--text", "-t", help="A text to explain (not logged).")] = None,
    prediction: Annotated[
        str | None, typer.Option("--prediction", "-p", help="A logged answer's prediction id.")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", "-v", min=1, help="With --text: the version that answers (champion).")
    ] = None,
    top: TopOpt = 10,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
) -> None:
    """Explain an answer: the words that pushed it and how much (green towards the answer, red
    against), exact for linear families, by leaving one word out at a time for the others.

    Example: learnloop explain --model reviews --text "Great sound, but it broke after a week"
    """
    if (text is None) == (prediction is None):
        fail("give either --text or --prediction")
    if prediction is not None and version is not None:
        fail("--version goes with --text: a logged answer is explained by the version that gave it")
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        if prediction is not None:
            answer = services.explanations.explain_prediction(model, prediction)
        else:
            assert text is not None
            answer = services.explanations.explain_text(model, text, version)
    if as_json:
        from learnloop.api.explain_schemas import ExplanationPublic

        console.print_json(ExplanationPublic.of(answer).model_dump_json())
        return
    show_explanation(answer, top)


def highlighted(answer: ExplainedAnswer) -> Text:
    """The text with each word's background coloured by what it added to the answer."""
    tokens = answer.explanation.tokens
    out = Text()
    strongest = max((abs(t.contribution) for t in tokens), default=0.0) or 1.0
    at = 0
    for t in tokens:
        out.append(answer.text[at : t.start])
        share = min(abs(t.contribution) / strongest, 1.0)
        fade = round(255 * (1 - 0.75 * share))
        colour = f"rgb({fade},255,{fade})" if t.contribution > 0 else f"rgb(255,{fade},{fade})"
        out.append(t.text, style=f"black on {colour}" if share >= 0.05 else "")
        at = t.end
    out.append(answer.text[at:])
    return out


def show_explanation(answer: ExplainedAnswer, top: int) -> None:
    x = answer.explanation
    logged = f"prediction {answer.prediction_id} " if answer.prediction_id else ""
    console.print(
        f"{escape(logged)}{escape(answer.model)} v{answer.version} ({escape(answer.family)}) answered "
        f"[bold]{escape(x.label)}[/] (p={x.probabilities[x.label]:.3f}); method {x.method}: {_HOW[x.method]}",
        soft_wrap=True,
    )
    if answer.served_label is not None and answer.served_label != x.label:
        console.print(f"[yellow]the logged answer said {escape(answer.served_label)}[/]")
    if x.tokens:
        console.print(highlighted(answer), soft_wrap=True)
    if x.scores is not None and x.intercept is not None:
        console.print(
            f"score of {escape(x.label)}: intercept {x.intercept[x.label]:+.3f} + terms "
            f"{x.scores[x.label] - x.intercept[x.label]:+.3f} = {x.scores[x.label]:+.3f}"
        )
    if x.truncated:
        console.print("[yellow]a long text: only its first words were taken out one by one[/]")
    table = Table(title=f"terms, strongest first (towards {x.label} +, against -)", title_justify="left")
    for column in ("term", "value", f"to {x.label}"):
        table.add_column(escape(column), justify="left" if column == "term" else "right")
    for t in x.terms[:top]:
        table.add_row(escape(t.term), "-" if t.value is None else f"{t.value:.3f}", f"{t.contributions[x.label]:+.4f}")
    console.print(table)


def weights(
    home: HomeOpt,
    model: ModelOpt,
    version: Annotated[int | None, typer.Option("--version", "-v", min=1, help="The version (champion).")] = None,
    compare: Annotated[
        tuple[int, int] | None,
        typer.Option("--compare", metavar="A B", help="Show what moved from version A to version B instead."),
    ] = None,
    top: TopOpt = 15,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
) -> None:
    """A linear version's strongest terms per label, or (--compare A B) the terms whose weight
    rose or fell most from version A to B.

    Example: learnloop weights --model reviews --compare 1 3
    """
    if compare is not None and version is not None:
        fail("give --version or --compare, not both")
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        if compare is not None:
            diff = services.explanations.changes(model, compare[0], compare[1], top)
        else:
            found = services.explanations.weights(model, version, top)
    if compare is not None:
        if as_json:
            from learnloop.api.explain_schemas import WeightsDiffPublic

            console.print_json(WeightsDiffPublic.of(diff).model_dump_json())
        else:
            show_changes(diff)
    elif as_json:
        from learnloop.api.explain_schemas import VersionWeightsPublic

        console.print_json(VersionWeightsPublic.of(found).model_dump_json())
    else:
        show_weights(found)


def show_weights(found: VersionWeights) -> None:
    console.print(f"{escape(found.model)} v{found.version} ({escape(found.family)}) weighs {found.terms} terms")
    for label, terms in found.top.items():
        table = Table(title=f"towards {escape(label)}", title_justify="left")
        table.add_column("term")
        table.add_column("weight", justify="right")
        for t in terms:
            table.add_row(escape(t.term), f"{t.weight:+.3f}")
        console.print(table)


def show_changes(diff: WeightsDiff) -> None:
    console.print(
        f"{escape(diff.model)}: v{diff.a} -> v{diff.b}: {diff.new_terms} new terms, {diff.dropped_terms} dropped"
    )
    shown = list(diff.changes.items())
    if len(shown) == 2:  # two labels: one's gains are the other's losses
        console.print(f"(towards {escape(shown[0][0])}: the same terms, the other way round)")
        shown = shown[1:]
    for label, (gained, lost) in shown:
        for title, changes in (("gained", gained), ("lost", lost)):
            table = Table(title=f"{title} weight towards {escape(label)}", title_justify="left")
            for column in ("term", f"v{diff.a}", f"v{diff.b}", "change"):
                table.add_column(column, justify="left" if column == "term" else "right")
            for c in changes:
                table.add_row(
                    escape(c.term),
                    "new" if c.before is None else f"{c.before:+.3f}",
                    "gone" if c.after is None else f"{c.after:+.3f}",
                    f"{c.change:+.3f}",
                )
            console.print(table)
