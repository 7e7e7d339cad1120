"""How a generation replay talks to learnloop: the classification replay's in-process driver
(the services themselves, simulated time, the worker's triggers and jobs run as time passes)
with the two calls a generative model's application makes: log answers made elsewhere, and
send feedback on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from learnloop.domain import FeedbackInput
from learnloop.feedback.generations import LoggedGeneration
from learnloop.replay.drivers import InProcessDriver


class GenerationDriver(InProcessDriver):
    def log_answers(self, items: Sequence[Mapping[str, object]]) -> list[LoggedGeneration]:
        """Log the answers (written before this returns, so feedback joins them at once); a
        refused one raises the ``ValidationError`` a client would see as a 422."""
        logged = [self.services.generations.log_sync(self.model, item) for item in items]
        self.services.ingest.flush()
        return logged

    def send(self, items: Sequence[FeedbackInput]) -> None:
        if items:
            self.services.feedback.record_sync(self.model, list(items))
