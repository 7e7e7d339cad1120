"""What a notification says: a one-line human summary per event kind, the JSON body of a
webhook, and a Slack-compatible body (``{"text", "blocks"}``, accepted by Slack incoming
webhooks and by Mattermost and Discord's Slack-compatible endpoints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from learnloop.domain import Event

REASON_CHARS = 300  # reasons are long sometimes (a gate verdict); summaries stay one line


def link(event: Event) -> str:
    """The API path that shows this event (and what followed it)."""
    return f"/v1/models/{event.model}/events?after_id={max(event.id - 1, 0)}"


def _reason(event: Event) -> str:
    text = " ".join((event.reason or "").split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def _in_brackets(*parts: str | None) -> str:
    text = ": ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def _v(version: Any) -> str:
    return f"version {version}" if version is not None else "a version"


def _promoted(e: Event) -> str:
    rollout = e.data.get("rollout")
    strategy = e.data.get("strategy") or (e.data.get("stats") or {}).get("strategy")
    where = None
    if rollout is not None:
        where = f"{strategy} rollout {rollout}" if strategy else f"rollout {rollout}"
    previous = e.data.get("previous")
    was = f", replacing version {previous}" if previous is not None else ""
    return f"{_v(e.version)} promoted{was}{_in_brackets(where, _reason(e))}"


def _rolled_back(e: Event) -> str:
    frm, to = e.data.get("from"), e.data.get("to")
    if frm is not None and to is not None:
        head = f"rolled back from version {frm} to version {to}"
    else:
        head = f"{_v(e.version)} rolled back"
    rollout = e.data.get("rollout")
    return head + _in_brackets(f"rollout {rollout}" if rollout is not None else None, _reason(e))


def _step(e: Event) -> str:
    frm, to = e.data.get("from"), e.data.get("to")
    shares = f" from {frm:.0%} to {to:.0%}" if isinstance(frm, int | float) and isinstance(to, int | float) else ""
    return f"rollout of {_v(e.version)} stepped{shares}{_in_brackets(_reason(e))}"


def _started(e: Event) -> str:
    strategy = e.data.get("strategy") or "rollout"
    share = e.data.get("share")
    traffic = f" at {share:.0%}" if isinstance(share, int | float) else ""
    return f"{strategy} rollout of {_v(e.version)} started{traffic}{_in_brackets(_reason(e))}"


def _simple(template: str) -> Callable[[Event], str]:
    def summarise(e: Event) -> str:
        text = template.format(v=_v(e.version))
        if "{v}" not in template and e.version is not None:
            text += f" on {_v(e.version)}"
        return text + _in_brackets(_reason(e))

    return summarise


SUMMARIES: dict[str, Callable[[Event], str]] = {
    "model_created": _simple("model created"),
    "version_registered": _simple("{v} registered"),
    "candidate_rejected": _simple("candidate {v} rejected by the gate"),
    "candidate_abandoned": _simple("candidate {v} abandoned when the retrain attempt that made it died"),
    "promoted": _promoted,
    "rolled_back": _rolled_back,
    "policy_changed": _simple("policy changed"),
    "params_changed": _simple("family parameters changed"),
    "retrain_queued": _simple("retrain queued"),
    "retrain_failed": _simple("retrain failed"),
    "retrain_reclaimed": _simple("retrain queued again after its worker stopped"),
    "retrain_cancelled": _simple("retrain cancelled"),
    "retrain_paused": _simple("retrain paused"),
    "retrain_resumed": _simple("retrain resumed"),
    "rollout_started": _started,
    "rollout_step": _step,
    "rollout_paused": _simple("rollout of {v} paused"),
    "rollout_resumed": _simple("rollout of {v} resumed"),
    "rollout_stopped": _simple("rollout of {v} stopped"),
    "rollout_concluded": _simple("rollout of {v} concluded"),
    "drift_detected": _simple("drift detected on {v}"),
    "accuracy_dropped": _simple("online accuracy dropped on {v}"),
    "rating_dropped": _simple("mean rating dropped on {v}"),
    "webhook_test": _simple("test notification"),
}


def summary(event: Event) -> str:
    """One line a person reads: ``"sentiment: version 3 promoted (canary rollout 2: ...)"``."""
    summarise = SUMMARIES.get(event.kind)
    if summarise is None:
        version = f" ({_v(event.version)})" if event.version is not None else ""
        text = f"{event.kind.replace('_', ' ')}{version}{_in_brackets(_reason(event))}"
    else:
        text = summarise(event)
    return f"{event.model}: {text}"


def json_body(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "model": event.model,
        "kind": event.kind,
        "version": event.version,
        "actor": event.actor,
        "reason": event.reason,
        "data": event.data,
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "summary": summary(event),
        "link": link(event),
    }


def slack_body(event: Event) -> dict[str, Any]:
    text = summary(event)
    when = f"{event.created_at:%Y-%m-%d %H:%M:%S} UTC" if event.created_at else "now"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{event.kind}*: {text}"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"event {event.id} by {event.actor}, {when}, `{link(event)}`"}],
            },
        ],
    }


BODIES: dict[str, Callable[[Event], dict[str, Any]]] = {"json": json_body, "slack": slack_body}


def encode(event: Event, format: str) -> bytes:
    """The exact bytes sent (and signed) for ``event`` in ``format``."""
    return orjson.dumps(BODIES[format](event), option=orjson.OPT_NON_STR_KEYS)
