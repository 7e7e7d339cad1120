"""A verdict's headline: the deciding words first, never cut.

A gate's reasons are long (every check, its interval, its test); a person reads the first
words. The headline leads with what decided: ``rejected: recent feedback NOT shown better
(McNemar p=0.75, n=41)``, or ``passed: golden set non-inferior (...); recent feedback better
(...)``. Both gates write it into their verdict (``"headline"``); ``verdict_headline`` reads it
back from a stored verdict, and makes one for a verdict stored before headlines existed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Words that mark a failed check in a reason of either gate.
_FAILED_MARKS = ("NOT ", "REGRESSES", "required")


def compose_headline(checks: Sequence[tuple[bool, str]], passed: bool) -> str:
    """``checks``: each deciding check's outcome and its short text. A rejection names the
    checks that failed; a pass names them all."""
    if passed:
        return "passed: " + "; ".join(text for _, text in checks) if checks else "passed"
    failed = [text for ok, text in checks if not ok]
    return "rejected: " + "; ".join(failed or [text for _, text in checks])


def verdict_headline(verdict: Mapping[str, Any]) -> str:
    """The headline of a stored verdict (a version's, a retrain job's result)."""
    if verdict.get("headline"):
        return str(verdict["headline"])
    reasons = [str(r) for r in verdict.get("reasons") or []]
    passed = bool(verdict.get("passed", True))
    failed = [r for r in reasons if any(mark in r for mark in _FAILED_MARKS)]
    return compose_headline([(passed, r) for r in (reasons if passed else failed or reasons)], passed)


def p_text(p: float) -> str:
    """``p=0.73``: a p-value as a person reads it, two significant digits, a tiny one as a bound."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"
