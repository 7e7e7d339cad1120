"""The cost and value of retrains on a real database (SQLite and PostgreSQL): a real retrain
records what its fit cost, and promotions whose online accuracy changes by known amounts are
valued with the right sign and interval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from conftest import asgi_get, register_version, uci_rows
from learnloop.cli.main import app as cli_app
from learnloop.config import Settings
from learnloop.domain import FeedbackInput, JobStatus, ModelVersion
from learnloop.policy import Policy
from learnloop.services import Services

CreateModel = Callable[..., ModelVersion]
PRICES = {"value_per_correct_answer": 2.0, "cost_per_cpu_hour": 3600.0, "value_min_judged": 30}


def test_a_real_retrain_records_its_cost_on_the_version_and_the_job(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    svc = services_factory(isolate_training=True)  # the fit runs in the training process
    first = make_model(svc, "m", policy=Policy.of(retrain_every=100_000))
    assert first.cost is not None and first.cost.scope == "process"
    svc.feedback.record_sync("m", [FeedbackInput(text=t, label=lab) for t, lab in uci_rows("amazon_cells")[:150]])
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    assert svc.worker.run_once()
    done = svc.jobs.get(job.id)
    assert done.status == JobStatus.SUCCEEDED and done.result is not None
    cost = svc.registry.version("m", 2).cost
    assert cost is not None and done.result["cost"] == cost.to_dict()
    assert cost.cpu_seconds > 0 and cost.wall_seconds > 0 and cost.peak_rss_bytes > 50 * 2**20
    assert cost.scope == "process" and cost.memory_measure in ("vmhwm", "maxrss") and cost.gpu_seconds is None
    row = next(r for r in svc.value.report("m").retrains if r.version == 2)
    assert row.cost == cost and row.cost_money == 0.0  # unpriced


def serve_and_judge(services: Services, texts: list[str], right: int, judged: int) -> None:
    """Serve ``texts``; feedback on the first ``judged`` answers: the first ``right`` of them
    confirmed, the others corrected to another label."""
    labels = services.registry.get_model("m").labels
    answers = [services.predictions.predict("m", text) for text in texts]
    services.ingest.flush()
    services.feedback.record_sync(
        "m",
        [
            FeedbackInput(
                prediction_id=a.prediction_id,
                label=a.label if i < right else next(lab for lab in labels if lab != a.label),
            )
            for i, a in enumerate(answers[:judged])
        ],
    )


def test_promotions_that_change_online_accuracy_are_valued_with_sign_and_interval(
    services: Services, settings: Settings, make_model: CreateModel, tmp_path: Path
) -> None:
    make_model(services, "m", policy=Policy.of(retrain_every=100_000, **PRICES))
    texts = [t for t, _ in uci_rows("amazon_cells")]
    rows = uci_rows("imdb")[:300]
    serve_and_judge(services, texts[:100], right=60, judged=100)  # version 1: 60% by its users
    register_version(services, "m", rows, note="better")
    services.registry.promote("m", 2, actor="test")
    serve_and_judge(services, texts[100:300], right=90, judged=100)  # version 2: 90%, 200 served
    register_version(services, "m", rows[:200], note="worse")
    services.registry.promote("m", 3, actor="test")
    serve_and_judge(services, texts[300:400], right=50, judged=100)  # version 3: 50%, 100 served
    register_version(services, "m", rows[:100], note="never served")

    report = services.value.report("m")
    by_version = {r.version: r for r in report.retrains}
    assert report.measure == "accuracy" and report.priced
    assert by_version[1].verdict == "first version" and by_version[1].gain is None

    better = by_version[2]
    assert better.gain is not None and better.gain.claimed and better.gain.served == 200
    assert better.gain.delta is not None and abs(better.gain.delta - 0.3) < 1e-9
    assert better.gain.gain_ci is not None and 0 < better.gain.gain_ci[0] < 60 < better.gain.gain_ci[1]
    assert better.verdict == "gain" and not better.bought_nothing
    assert better.value_money is not None and abs(better.value_money - 120.0) < 1e-6  # 60 answers at 2.0

    worse = by_version[3]
    assert worse.gain is not None and worse.gain.delta is not None and abs(worse.gain.delta + 0.4) < 1e-9
    assert worse.gain.gain_ci is not None and worse.gain.gain_ci[1] < 0
    assert worse.verdict == "loss" and worse.bought_nothing
    assert worse.return_money is not None and worse.return_money < 0

    idle = by_version[4]
    assert idle.verdict == "not promoted" and idle.bought_nothing and idle.value_money == 0.0
    assert report.totals["bought_nothing"] == 2 and report.totals["claimed"] == 2
    assert abs(report.totals["gain"] - (60 - 40)) < 1e-6

    body = asgi_get(services, "/v1/models/m/retrains/value").json()
    assert [r["verdict"] for r in body["retrains"]] == ["first version", "gain", "loss", "not promoted"]
    assert body["retrains"][1]["gain"]["unit"] == "correct answers"
    page = asgi_get(services, "/dashboard/models/m")
    assert page.status_code == 200 and 'id="retrain-value"' in page.text
    assert "bought nothing: loss" in page.text and "Cumulative cost and value" in page.text

    where = ["--home", str(settings.home), "--database-url", settings.database_url]
    shown = CliRunner().invoke(
        cli_app, ["value", "m", *where, "--plot", str(tmp_path / "value.png")], env={"COLUMNS": "300"}
    )
    assert shown.exit_code == 0, shown.output
    assert "bought nothing: loss" in shown.output and "2 bought nothing" in shown.output
    assert (tmp_path / "value.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_promotion_judged_on_few_answers_claims_no_value(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m", policy=Policy.of(retrain_every=100_000, **PRICES))
    texts = [t for t, _ in uci_rows("amazon_cells")]
    serve_and_judge(services, texts[:100], right=60, judged=100)
    register_version(services, "m", uci_rows("imdb")[:200], note="new")
    services.registry.promote("m", 2, actor="test")
    serve_and_judge(services, texts[100:150], right=10, judged=10)
    row = next(r for r in services.value.report("m").retrains if r.version == 2)
    assert row.verdict == "too few answers" and not row.bought_nothing
    assert row.gain is not None and not row.gain.claimed and row.value_money is None and row.return_money is None
    assert "10 after" in row.gain.reason
