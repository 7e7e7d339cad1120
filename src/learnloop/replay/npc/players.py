"""Simulated players talking to a running server over HTTP: each encounter asks the innkeeper
for a few answers to one line at once (sampled, so they differ; the server decodes them in one
batch), rates each and, when the best is clearly better than the worst by the hidden taste,
says which it prefers (a preference between two logged answers)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from learnloop.replay.npc.taste import LINES, PLAYERS, Taste, breaks_scene, choose, rate, score


@dataclass(frozen=True)
class Answer:
    """One answer as a player saw and rated it; ``at`` in seconds since the demo started."""

    at: float
    player: str
    line: str
    prediction_id: str
    version: int
    route: str
    text: str
    score: float
    rating: int
    breaks_scene: bool
    tokens: int
    latency_ms: float


@dataclass(frozen=True)
class Encounter:
    answers: tuple[Answer, ...]
    preference: tuple[int, int] | None  # (chosen, rejected) indices into answers; None: no preference given


class ServerError(RuntimeError):
    pass


class InnClient:
    """The HTTP calls the demo makes; one client shared by the players' threads."""

    def __init__(self, base_url: str, model: str, *, max_new_tokens: int, temperature: float) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=120.0)
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            request = response.request
            raise ServerError(f"{request.method} {request.url.path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def generate(self, line: str, player: str, seed: int) -> dict[str, Any]:
        body = {
            "prompt": line,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": seed,
            "subject": player,
        }
        return dict(self._ok(self.client.post(f"/v1/models/{self.model}/generate", json=body)))

    def feedback(self, items: list[dict[str, Any]]) -> None:
        body = self._ok(self.client.post(f"/v1/models/{self.model}/feedback/batch", json={"items": items}))
        if body["rejected"]:
            raise ServerError(f"the server rejected feedback: {body['items']}")

    def get(self, path: str, **params: Any) -> Any:
        return self._ok(self.client.get(path, params=params))

    def close(self) -> None:
        self.client.close()


class Players:
    """``concurrency`` players in threads, each running encounters until ``stop`` is set (and
    none while ``resting`` is set)."""

    def __init__(
        self, client: InnClient, taste: Taste, *, seed: int, started: float, answers_per_encounter: int = 2
    ) -> None:
        if answers_per_encounter < 2:
            raise ValueError("an encounter needs at least 2 answers to compare")
        self.client = client
        self.taste = taste
        self.seed = seed
        self.started = started
        self.answers_per_encounter = answers_per_encounter
        self._calls: ThreadPoolExecutor | None = None  # the answers of encounters, asked at once
        self.encounters: list[Encounter] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.resting = threading.Event()  # set: no new encounters start (a retrain has the CPU)
        self._lock = threading.Lock()

    def _answer(self, reply: dict[str, Any], player: str, line: str, rng: random.Random) -> Answer:
        text = str(reply["text"])
        return Answer(
            at=time.monotonic() - self.started,
            player=player,
            line=line,
            prediction_id=str(reply["prediction_id"]),
            version=int(reply["version"]),
            route=str(reply["route"]),
            text=text,
            score=score(text),
            rating=rate(text, self.taste, rng),
            breaks_scene=breaks_scene(text),
            tokens=int(reply["completion_tokens"]),
            latency_ms=float(reply["latency_ms"]),
        )

    def encounter(self, rng: random.Random) -> Encounter:
        """One line, ``answers_per_encounter`` answers asked for at once, each rated; the best
        preferred over the worst when the taste tells them apart (ties: the first asked)."""
        player, line = rng.choice(PLAYERS), rng.choice(LINES)
        seeds = [rng.randrange(2**31) for _ in range(self.answers_per_encounter)]
        if self._calls is None:
            replies = [self.client.generate(line, player, seed) for seed in seeds]
        else:
            asked: list[Future[dict[str, Any]]] = [
                self._calls.submit(self.client.generate, line, player, seed) for seed in seeds
            ]
            replies = [call.result() for call in asked]
        answers = tuple(self._answer(reply, player, line, rng) for reply in replies)
        order = sorted(range(len(answers)), key=lambda i: -answers[i].score)
        best, worst = order[0], order[-1]
        chosen = choose(answers[best].text, answers[worst].text, self.taste, rng)
        items: list[dict[str, Any]] = [
            {"prediction_id": a.prediction_id, "rating": a.rating, "subject": player} for a in answers
        ]
        preference = None if chosen is None else ((best, worst) if chosen == 0 else (worst, best))
        if preference is not None:
            items.append(
                {
                    "chosen_prediction_id": answers[preference[0]].prediction_id,
                    "rejected_prediction_id": answers[preference[1]].prediction_id,
                    "subject": player,
                }
            )
        self.client.feedback(items)
        return Encounter(answers, preference)

    def _play(self, index: int, on_encounter: Callable[[Encounter], None]) -> None:
        rng = random.Random(self.seed * 1_000 + index)
        while not self.stop.is_set():
            if self.resting.is_set():
                time.sleep(0.2)
                continue
            try:
                done = self.encounter(rng)
            except (ServerError, httpx.HTTPError) as exc:
                with self._lock:
                    self.errors.append(str(exc))
                    if len(self.errors) >= 20:
                        self.stop.set()
                time.sleep(0.5)
                continue
            with self._lock:
                self.encounters.append(done)
            on_encounter(done)

    def start(self, concurrency: int, on_encounter: Callable[[Encounter], None]) -> ThreadPoolExecutor:
        """``concurrency`` players; ``shutdown`` ends them (after ``stop``)."""
        self._calls = ThreadPoolExecutor(max_workers=concurrency * self.answers_per_encounter, thread_name_prefix="ask")
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="player")
        for index in range(concurrency):
            pool.submit(self._play, index, on_encounter)
        return pool

    def shutdown(self, pool: ThreadPoolExecutor) -> None:
        self.stop.set()
        pool.shutdown(wait=True)
        if self._calls is not None:
            self._calls.shutdown(wait=True)

    def answers(self) -> list[Answer]:
        with self._lock:
            return [a for e in self.encounters for a in e.answers]
