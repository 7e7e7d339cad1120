"""Live feedback -> was each arm right? Pure logic, no I/O.

One outcome per prediction: the prediction's feedback is resolved as the curation does it (an
explicit label beats thumbs and ratings; within a kind the latest wins), then:

* a label (or a confirming thumbs up / rating 4-5) says which label was right, so the answer
  was right if it is that label;
* thumbs down or a rating of 1-2 says the answer was wrong (on a multi-class task it does not
  say which label was right);
* a rating of 3 says nothing.

For a shadow, the feedback is on the champion's answer; the shadow's answer is right if it is
the implied label. A multi-class thumbs down tells only that the shadow was wrong too when it
gave the same answer; when it gave another answer the pair is left out (unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from learnloop.curation.labels import implied_label, winning_events
from learnloop.evaluation.sequential import ArmCounts


def latest_per_prediction(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The deciding event of each prediction (rows oldest first), as curation decides it."""
    return winning_events(rows, lambda row: row["prediction_id"])[0]


def answer_correct(row: Mapping[str, Any], labels: Sequence[str], answer: str | None = None) -> bool | None:
    """Was ``answer`` (default: the served answer) right, by this feedback event? None: unknown."""
    predicted = row["predicted_label"]
    answer = predicted if answer is None else answer
    truth, outcome = implied_label(row, labels)
    if truth is not None:
        return answer == truth
    if outcome == "negative":  # "not the served answer"
        return False if answer == predicted else None
    return None


@dataclass(frozen=True)
class ArmOutcomes:
    a: ArmCounts
    b: ArmCounts
    unknown: int  # predictions with feedback that says nothing about being right


def two_arm_outcomes(
    rows: Iterable[Mapping[str, Any]], labels: Sequence[str], *, a_version: int, b_version: int
) -> ArmOutcomes:
    """Per-arm correct/total for a canary or A/B test: arm B is what ``b_version`` answered on
    the ``canary`` route, arm A what ``a_version`` answered on its own route (requests a failed
    challenger handed to the champion, route ``fallback``, belong to neither)."""
    counts = {"a": [0, 0], "b": [0, 0]}
    unknown = 0
    for row in latest_per_prediction(rows):
        if row["route"] == "canary" and row["version"] == b_version:
            arm = "b"
        elif row["route"] in ("champion", "baseline") and row["version"] == a_version:
            arm = "a"
        else:
            continue
        correct = answer_correct(row, labels)
        if correct is None:
            unknown += 1
            continue
        counts[arm][0] += 1
        counts[arm][1] += int(correct)
    return ArmOutcomes(ArmCounts(*counts["a"]), ArmCounts(*counts["b"]), unknown)


@dataclass(frozen=True)
class PairedOutcomes:
    both: int
    a_only: int
    b_only: int
    neither: int
    unknown: int

    @property
    def n(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither


def paired_outcomes(rows: Iterable[Mapping[str, Any]], labels: Sequence[str]) -> PairedOutcomes:
    """Served answer (A) and shadow answer (B) on the same requests, judged by the same feedback."""
    cells = {"both": 0, "a_only": 0, "b_only": 0, "neither": 0}
    unknown = 0
    for row in latest_per_prediction(rows):
        a = answer_correct(row, labels)
        b = answer_correct(row, labels, row["shadow_label"])
        if a is None or b is None:
            unknown += 1
            continue
        cells["both" if a and b else "a_only" if a else "b_only" if b else "neither"] += 1
    return PairedOutcomes(**cells, unknown=unknown)
