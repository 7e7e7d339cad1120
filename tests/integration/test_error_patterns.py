"""Error patterns on a real database (SQLite and PostgreSQL) with a model trained on the shipped
restaurant reviews: users keep correcting its answers on sarcastic complaints about delays
(a pattern planted in the feedback), besides its ordinary mistakes on phone reviews. The
analysis must find that cluster and the metadata slice it came through, report each once as an
``error_pattern`` event, and show them through the API, the CLI and the dashboard."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from typer.testing import CliRunner

from conftest import asgi_get, uci_rows
from learnloop.cli.main import app
from learnloop.config import Settings
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.services import Services
from webhook_receiver import receiving

CreateModel = Callable[..., ModelVersion]
OTHER = {"0": "1", "1": "0"}


def sarcastic_delays(n: int) -> list[str]:
    """Sarcastic complaints about delays, each slot drawn at random (seeded) from many values, so
    they share the complaint rather than a ride or a word of praise."""
    rng = random.Random(7)
    praise = ["Great", "Wonderful", "Fantastic", "Lovely", "Perfect", "Brilliant", "Amazing", "Superb"]
    ride = ["train", "bus", "flight", "ferry", "tram", "shuttle", "coach", "plane", "metro", "connection"]
    hours = ["two", "three", "four", "five", "six", "seven"]
    return [
        f"{rng.choice(praise)}, the {rng.choice(ride)} was delayed {rng.choice(hours)} hours again. "
        "Just what I needed <b>again</b>"
        for _ in range(n)
    ]


def plant_feedback(services: Services) -> None:
    """300 phone reviews labelled truly (the model's ordinary mistakes, through the web and the
    app) and 50 sarcastic delays, every one corrected (through SMS); the predictions themselves
    carry where they were asked (``store``: the delays at the airport)."""
    phones = uci_rows("amazon_cells")[:300]
    served = [services.predictions.predict("m", text, metadata={"store": "town"}) for text, _ in phones]
    delays = [services.predictions.predict("m", text, metadata={"store": "airport"}) for text in sarcastic_delays(50)]
    services.ingest.flush()
    items = [
        FeedbackInput(prediction_id=p.prediction_id, label=label, metadata={"channel": ("web", "app")[i % 2]})
        for i, (p, (_, label)) in enumerate(zip(served, phones, strict=True))
    ]
    items += [
        FeedbackInput(prediction_id=p.prediction_id, label=OTHER[p.label], metadata={"channel": "sms"}) for p in delays
    ]
    services.feedback.record_sync("m", items)


def test_a_planted_pattern_is_found_reported_once_and_shown(
    services: Services, settings: Settings, make_model: CreateModel
) -> None:
    make_model(services, "m")
    plant_feedback(services)

    found = services.patterns.analyse("m")
    a = found.analysis
    assert a.judged == 350 and a.disagreements >= 50
    delay = [p for p in a.patterns if "delayed" in p.terms]
    assert delay, [p.terms for p in a.patterns]
    pattern = delay[0]  # the largest
    # The clustering may split the 50 planted complaints (by the praise or the ride they share):
    # together they hold most of them, and the largest alone is a significant excess of errors
    assert sum(p.size for p in delay) >= 40, [(p.terms, p.size) for p in a.patterns]
    assert pattern.size >= 25 and pattern.region.significant, [(p.terms, p.size) for p in a.patterns]
    assert {"delayed", "hours"} <= set(pattern.terms)
    assert all("delayed" in e.text for e in pattern.examples)
    assert pattern.pairs[0][1] > pattern.size / 2  # most of them one pair ("1 -> 0": praise read as positive)
    keys = {s.key for s in a.slices}
    assert "metadata.channel=sms" in keys
    assert not {"metadata.channel=web", "metadata.channel=app"} & keys
    assert "metadata.store=airport" in keys  # the prediction's own metadata slices too
    sms = next(s for s in a.slices if s.key == "metadata.channel=sms")
    assert sms.test.n == 50 and sms.test.errors == 50 and sms.test.q_value < 0.05

    with receiving() as receiver:  # a webhook subscribed to the kind hears of each new pattern
        services.notify.add_webhook(receiver.url, model="m", kinds=["error_pattern"])
        first = services.patterns.check("m")
        services.notify.dispatch()
        sent = [r.json() for r in receiver.requests]
    assert len(sent) == len(first.new) > 0 and {r["kind"] for r in sent} == {"error_pattern"}
    assert not any("Just what I needed" in json.dumps(r) for r in sent)  # never users' texts
    reported = {json.dumps(d.get("terms") or d.get("key")) for d in first.new}
    assert any("delayed" in d.get("terms", []) or "hours" in d.get("terms", []) for d in first.new), reported
    assert any(d.get("key") == "metadata.channel=sms" for d in first.new), reported
    events = services.registry.events("m", 50, kinds=["error_pattern"])
    assert len(events) == len(first.new) and all(e.reason and e.reason.startswith("new error") for e in events)

    second = services.patterns.check("m")  # the same feedback: nothing new, nothing written
    assert second.new == []
    assert len(services.registry.events("m", 50, kinds=["error_pattern"])) == len(first.new)

    answer = asgi_get(services, "/v1/models/m/error-patterns")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["judged"] == 350 and any("delayed" in p["terms"] or "hours" in p["terms"] for p in body["patterns"])
    assert asgi_get(services, "/v1/models/nope/error-patterns").status_code == 404

    page = asgi_get(services, "/dashboard/models/m/patterns")
    assert page.status_code == 200
    assert "&lt;b&gt;again&lt;/b&gt;" in page.text and "<b>again" not in page.text  # users' text escaped
    assert "metadata.channel=sms" in page.text

    where = ["--home", str(settings.home), "--database-url", settings.database_url]
    shown = CliRunner().invoke(app, ["patterns", "m", *where], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "delayed" in shown.output and "metadata.channel=sms" in shown.output and "<b>again</b>" in shown.output
    checked = CliRunner().invoke(app, ["patterns", "--model", "m", "--check", *where], env={"COLUMNS": "250"})
    assert checked.exit_code == 0 and "nothing new to report" in checked.output
    as_json = CliRunner().invoke(app, ["patterns", "-m", "m", "--json", *where])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["judged"] == 350


def test_without_feedback_there_is_nothing_to_cluster(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    found = services.patterns.analyse("m").analysis
    assert found.judged == 0 and found.patterns == [] and found.slices == [] and found.k is None
    assert services.patterns.check("m").new == []
    page = asgi_get(services, "/dashboard/models/m/patterns")
    assert page.status_code == 200 and "No clusters" in page.text
