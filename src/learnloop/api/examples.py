"""Example request bodies for the OpenAPI document, by the schema a body has (``/docs`` offers
them in a list and fills "Try it out" with the first). A test checks each one validates."""

from __future__ import annotations

from typing import Any

Examples = dict[str, dict[str, Any]]

PREDICTION_ID = "0193f1a2-7c4e-7b31-9a52-3f0c2d9e8a11"
OTHER_PREDICTION_ID = "0193f1a2-7c4e-7b31-9a52-3f0c2d9e8a12"


def _one(summary: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "value": value}


_REASON: Examples = {
    "reason": _one("With a reason for the audit trail", {"reason": "accuracy fell after the catalogue change"}),
    "empty": _one("No reason (the body may be left out)", {}),
}

REQUEST_EXAMPLES: dict[str, Examples] = {
    "PredictRequest": {
        "text": _one("A text to classify", {"text": "The battery lasts all day, love it", "subject": "user-42"}),
    },
    "ExplainRequest": {
        "champion": _one("A text, explained by the champion", {"text": "Great sound, but it broke after a week"}),
        "version": _one("A text, explained by version 2", {"text": "Great sound, fair price", "version": 2}),
    },
    "PredictBatchRequest": {
        "texts": _one(
            "Several texts at once",
            {"items": [{"text": "Great sound, fair price"}, {"text": "Broke after a week", "subject": "user-7"}]},
        ),
    },
    "FeedbackCreate": {
        "label": _one("The right label of an answer", {"prediction_id": PREDICTION_ID, "label": "1"}),
        "thumbs": _one("Thumbs up or down", {"prediction_id": PREDICTION_ID, "thumbs": "down", "subject": "user-42"}),
        "idempotent": _one(
            "Safe to retry: a client feedback id",
            {"prediction_id": PREDICTION_ID, "label": "0", "feedback_id": "ticket-1234-review"},
        ),
        "rating": _one("A rating of a generated answer (1-5)", {"prediction_id": PREDICTION_ID, "rating": 4}),
        "correction": _one(
            "A corrected generated answer",
            {"prediction_id": PREDICTION_ID, "correction": "Refunds take up to 5 working days."},
        ),
        "preference": _one(
            "One answer preferred over another",
            {"chosen_prediction_id": PREDICTION_ID, "rejected_prediction_id": OTHER_PREDICTION_ID},
        ),
        "implicit": _one("An implicit signal", {"prediction_id": PREDICTION_ID, "signal": "copied", "value": True}),
        "example": _one("A labelled example, no answer needed", {"text": "Arrived broken, no reply", "label": "0"}),
    },
    "FeedbackBatchCreate": {
        "events": _one(
            "Several events; each is stored or rejected on its own",
            {
                "items": [
                    {"prediction_id": PREDICTION_ID, "label": "1"},
                    {"prediction_id": OTHER_PREDICTION_ID, "thumbs": "up"},
                ]
            },
        ),
    },
    "GenerateRequest": {
        "prompt": _one("A prompt", {"prompt": "How long do refunds take?", "max_new_tokens": 64}),
        "conversation": _one(
            "A conversation, streamed",
            {
                "messages": [
                    {"role": "user", "content": "Where is my order?"},
                    {"role": "assistant", "content": "Could you give me the order number?"},
                    {"role": "user", "content": "It is 1234."},
                ],
                "stream": True,
            },
        ),
    },
    "GenerationCreate": {
        "answer": _one(
            "An answer made by another service",
            {
                "prompt": "How long do refunds take?",
                "response": "Refunds take up to 5 working days.",
                "source_model": "support-bot-v3",
                "latency_ms": 420.0,
            },
        ),
    },
    "GenerationBatchCreate": {
        "answers": _one(
            "Several answers; each is logged or rejected on its own",
            {
                "items": [
                    {"prompt": "How long do refunds take?", "response": "Up to 5 working days."},
                    {"prompt": "Do you ship abroad?", "response": "Yes, to 30 countries."},
                ]
            },
        ),
    },
    "ChatCompletionCreate": {
        "chat": _one(
            "As OpenAI's chat completions",
            {"model": "support", "messages": [{"role": "user", "content": "How long do refunds take?"}]},
        ),
    },
    "RolloutCreate": {
        "canary": _one("A canary of version 3", {"version": 3, "strategy": "canary", "reason": "learned phones"}),
        "ab": _one(
            "An A/B test at 50%, its own settings",
            {"version": 3, "strategy": "ab", "share": 0.5, "settings": {"canary_min_feedback": 400}},
        ),
    },
    "PromoteRequest": {
        "promote": _one("With a reason", {"reason": "passed the canary by hand"}),
        "force": _one(
            "A version the gate rejected, knowingly", {"reason": "the gate's golden set is stale", "force": True}
        ),
    },
    "ActionRequest": _REASON,
    "PolicyUpdate": {
        "policy": _one("Retrain after every 100 labels", {"changes": {"retrain_every": 100}}),
    },
    "WebhookCreate": {
        "webhook": _one(
            "Promotions and rejections of one model, to Slack",
            {
                "url": "https://hooks.example.com/learnloop",
                "model": "reviews",
                "kinds": ["promoted", "candidate_rejected"],
                "format": "slack",
            },
        ),
    },
    "KeyCreate": {
        "app": _one(
            "An application's key: predict and give feedback on one model, for 90 days",
            {"name": "app", "scopes": ["predict", "feedback"], "models": ["reviews"], "expires": "90d"},
        ),
        "dashboard": _one(
            "A reader of every model (the dashboard's pages, /metrics)", {"name": "grafana", "scopes": ["read"]}
        ),
    },
}

_REVIEW_ROWS = [
    {"text": "Great sound, fair price", "label": "1"},
    {"text": "Broke after a week", "label": "0"},
    {"text": "Works as described", "label": "1"},
    {"text": "Battery died in an hour", "label": "0"},
]

# POST /v1/models takes two bodies (``api/model_schemas.py``): examples of each.
CREATE_MODEL_JSON: Examples = {
    "classifier": _one(
        "A classifier from rows",
        {
            "name": "reviews",
            "rows": _REVIEW_ROWS,
            "policy": {"retrain_every": 100},
        },
    ),
    "label_names": _one(
        "Coded labels given names",
        {
            "name": "reviews",
            "rows": _REVIEW_ROWS,
            "label_names": {"0": "negative", "1": "positive"},
        },
    ),
    "external": _one(
        "A generative model answered elsewhere (no data)",
        {"name": "support", "task": "generation", "backend": "external"},
    ),
}
CREATE_MODEL_UPLOAD: Examples = {
    "upload": _one(
        "A CSV file and its columns",
        {"name": "reviews", "file": "reviews.csv", "text_column": "review", "label_column": "stars"},
    ),
    "label_names": _one(
        "A file with coded labels, given names",
        {"name": "reviews", "file": "reviews.csv", "label_names": '{"0": "negative", "1": "positive"}'},
    ),
}
