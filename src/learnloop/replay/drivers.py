"""How a replay talks to learnloop: in this process, or over HTTP to a real server.

Both drivers go through the same services that decide (triggers, the retrain pipeline, the
gate, promotion); they differ only in transport and time. In process, time is simulated: a
``FakeClock`` moves ``1 / rate`` seconds per stream item and the worker's trigger check and
jobs run at once, so a replay is fast and reproducible. Over HTTP, time is real: the replay
paces its requests at ``rate`` items per second and the server's own worker retrains in the
background while the stream goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from learnloop.clock import FakeClock
from learnloop.domain import FeedbackInput, Job, JobStatus
from learnloop.errors import ValidationError
from learnloop.replay.users import PlannedFeedback

if TYPE_CHECKING:
    import httpx

    from learnloop.services import Services

MODES = ("in-process", "http")  # in this process (simulated time) or over HTTP to a server


class ItemRefused(Exception):
    """learnloop refused to predict on an item (as a client would see a 422)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Served:
    prediction_id: str
    version: int
    label: str
    confidence: float
    latency_ms: float  # as the client saw it (over HTTP: the whole request)
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopEvent:
    id: int
    kind: str
    version: int | None
    reason: str | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRecord:
    id: str
    status: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    wall_seconds: float | None = None  # measured by the driver (in process, where time is simulated)


class LoopDriver(Protocol):
    mode: str

    def now(self) -> datetime: ...

    def predict(self, text: str, subject: str) -> Served: ...

    def send_feedback(self, feedback: Sequence[tuple[str, PlannedFeedback]]) -> None:
        """Send (prediction id, planned feedback) pairs; returns once they are acknowledged."""
        ...

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of stream time pass (the loop's background work happens here)."""
        ...

    def settle(self, timeout: float) -> bool:
        """Wait until no retrain is queued or running; False if one still is after ``timeout``."""
        ...

    def events_after(self, after_id: int) -> list[LoopEvent]: ...

    def jobs(self) -> list[JobRecord]: ...

    def close(self) -> None: ...


def _feedback_input(prediction_id: str, planned: PlannedFeedback) -> FeedbackInput:
    return FeedbackInput(
        prediction_id=prediction_id,
        label=planned.label,
        thumbs=planned.thumbs,
        subject=planned.subject,
    )


class InProcessDriver:
    """Drives the services directly, with simulated time (see the module docstring)."""

    mode = "in-process"

    def __init__(
        self,
        services: Services,
        clock: FakeClock,
        model: str,
        *,
        trigger_poll_seconds: float,
        on_job: Callable[[Job], None] | None = None,
    ) -> None:
        self.services = services
        self.clock = clock
        self.model = model
        self._poll = trigger_poll_seconds
        self._since_poll = 0.0
        self._wall: dict[str, float] = {}
        self._on_job = on_job  # told of each queued job before it runs here (it blocks the stream)
        services.cache.refresh()

    def now(self) -> datetime:
        return self.clock.now()

    def predict(self, text: str, subject: str) -> Served:
        started = time.perf_counter()
        try:
            r = self.services.predictions.predict(self.model, text, subject)
        except ValidationError as exc:
            raise ItemRefused(exc.code, exc.message) from exc
        latency = 1000 * (time.perf_counter() - started)
        return Served(
            r.prediction_id, r.version, r.label, max(r.probabilities.values()), latency, dict(r.probabilities)
        )

    def send_feedback(self, feedback: Sequence[tuple[str, PlannedFeedback]]) -> None:
        if feedback:
            self.services.feedback.record_sync(self.model, [_feedback_input(pid, fb) for pid, fb in feedback])

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self._since_poll += seconds
        if self._since_poll >= self._poll:
            self._since_poll = 0.0
            self._work()

    def _work(self) -> None:
        self.services.ingest.flush()  # the prediction log, so feedback joins its predictions
        self.services.shadow.drain()
        self.services.worker.check_rollouts()
        self.services.worker.check_triggers()
        while True:
            # The worker claims the oldest queued job (the list is newest first); time it here,
            # since the job's own timestamps come from the simulated clock.
            queued = [j for j in self.services.jobs.list(self.model, 5) if j.status == JobStatus.QUEUED]
            if queued and self._on_job is not None:
                self._on_job(queued[-1])
            started = time.perf_counter()
            if not self.services.worker.run_once():
                break
            if queued:
                self._wall[queued[-1].id] = time.perf_counter() - started

    def settle(self, timeout: float) -> bool:
        self._work()  # runs every queued job to its end
        return True

    def events_after(self, after_id: int) -> list[LoopEvent]:
        return [
            LoopEvent(e.id, e.kind, e.version, e.reason, e.created_at or self.now(), e.data)
            for e in self.services.registry.events(self.model, 500, after_id)
        ]

    def jobs(self) -> list[JobRecord]:
        return [
            JobRecord(
                j.id,
                j.status.value,
                j.requested_by,
                j.created_at,
                j.started_at,
                j.finished_at,
                j.result,
                j.error,
                self._wall.get(j.id),
            )
            for j in self.services.jobs.list(self.model, 1000)
        ]

    def close(self) -> None:
        self.services.close()


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class HttpDriver:
    """Drives a running ``learnloop serve`` through its public API, in real time."""

    mode = "http"

    def __init__(self, base_url: str, model: str, *, rate: float, api_key: str | None = None) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        import httpx  # lazily: learnloop's CLI starts without it

        self.client = httpx.Client(base_url=base_url, timeout=30.0, headers=headers)
        self.model = model
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
            )
        return response.json()

    def predict(self, text: str, subject: str) -> Served:
        started = time.perf_counter()
        response = self.client.post(f"/v1/models/{self.model}/predict", json={"text": text, "subject": subject})
        latency = 1000 * (time.perf_counter() - started)
        if response.status_code == 422:
            problem = response.json()
            raise ItemRefused(problem.get("code", "validation_error"), problem.get("detail", ""))
        body = self._ok(response)
        confidence = max(body["probabilities"].values())
        return Served(body["prediction_id"], body["version"], body["label"], confidence, latency, body["probabilities"])

    def send_feedback(self, feedback: Sequence[tuple[str, PlannedFeedback]]) -> None:
        if not feedback:
            return
        items = []
        for pid, fb in feedback:
            item: dict[str, Any] = {"prediction_id": pid, "subject": fb.subject}
            item.update({"label": fb.label} if fb.label is not None else {"thumbs": fb.thumbs})
            items.append(item)
        body = self._ok(self.client.post(f"/v1/models/{self.model}/feedback/batch", json={"items": items}))
        if body["rejected"]:
            raise RuntimeError(f"the server rejected {body['rejected']} feedback events: {body['items'][:3]}")

    def advance(self, seconds: float) -> None:
        self._next += self._interval
        pause = self._next - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            self._next = time.monotonic()  # behind: do not burst to catch up

    def settle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if not [j for j in self.jobs()[:5] if j.status in ("queued", "running")]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def events_after(self, after_id: int) -> list[LoopEvent]:
        rows = self._ok(self.client.get(f"/v1/models/{self.model}/events", params={"after_id": after_id, "limit": 500}))
        return [
            LoopEvent(r["id"], r["kind"], r["version"], r["reason"], _time(r["created_at"]) or self.now(), r["data"])
            for r in rows
        ]

    def jobs(self) -> list[JobRecord]:
        rows = self._ok(self.client.get("/v1/jobs", params={"model": self.model, "limit": 200}))
        out = []
        for r in rows:
            created = _time(r["created_at"])
            assert created is not None
            out.append(
                JobRecord(
                    r["job_id"],
                    r["status"],
                    r["requested_by"],
                    created,
                    _time(r["started_at"]),
                    _time(r["finished_at"]),
                    r["result"],
                    r["error"],
                )
            )
        return out

    def close(self) -> None:
        self.client.close()
