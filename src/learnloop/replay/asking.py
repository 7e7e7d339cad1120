"""Simulated users who answer what the loop asks them about, instead of a random share.

``AskingRounds`` collects the served answers; every ``ask_every`` items (and at the last item)
it asks about the ones ``tasks.classification.active.select_for_feedback`` ranks first (smallest margin,
no two near-identical texts), as a client of ``GET /v1/models/{model}/ask`` would. The budget
is the random users' one: ``feedback_rate`` labels per served item, accumulated, so the two
selections send the same number of labels (a skipped near-duplicate leaves its label for the
next round). The users asked answer through ``SimulatedUsers.answer`` (noise and adversaries
as for random feedback), at the round's end or ``delay`` items after the item, whichever is later.

Selection runs on the answers as served (the client has their probabilities), so it works the
same in process and over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from learnloop.replay.drivers import Served
from learnloop.replay.users import PlannedFeedback, SimulatedUsers
from learnloop.tasks.classification.active import Candidate, select_for_feedback


@dataclass(frozen=True)
class _Seen:
    item: int
    subject: str
    truth: str
    text: str
    served: Served


class AskingRounds:
    def __init__(self, users: SimulatedUsers) -> None:
        self.users = users
        self._seen: list[_Seen] = []
        self._budget = 0.0

    def add(
        self, item: int, subject: str, truth: str, text: str, served: Served, *, last: bool = False
    ) -> list[tuple[str, PlannedFeedback]]:
        """Record one served answer; at the end of a round, the feedback of the users asked."""
        self._seen.append(_Seen(item, subject, truth, text, served))
        self._budget += self.users.model.feedback_rate
        if len(self._seen) < self.users.model.ask_every and not last:
            return []
        return self.ask(item)

    def ask(self, now: int) -> list[tuple[str, PlannedFeedback]]:
        """Ask about the most uncertain answers seen since the last round (``now``: the current item)."""
        # Keyed by the stream position, so ties go to the earlier item in every run (prediction
        # ids differ from run to run).
        seen = {f"{s.item:010d}": s for s in self._seen}
        self._seen = []
        k = int(self._budget + 1e-9)
        candidates = [Candidate(key, s.text, s.served.probabilities) for key, s in seen.items()]
        picks = select_for_feedback(candidates, k)
        self._budget -= len(picks)
        out = []
        for key in sorted(p.id for p in picks):  # answered in stream order
            s = seen[key]
            due = max(now, s.item + self.users.model.delay)
            out.append((s.served.prediction_id, self.users.answer(s.item, s.subject, s.truth, s.served.label, due)))
        return out
