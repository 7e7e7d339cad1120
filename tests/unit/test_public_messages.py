"""Answers to unauthenticated clients name no file path; keys relative to a store stay."""

from __future__ import annotations

from learnloop.errors import without_paths


def test_absolute_paths_and_file_urls_are_replaced_and_store_keys_kept() -> None:
    assert without_paths("artifact directory missing: /srv/ll/artifacts/m/1") == "artifact directory missing: <path>"
    assert without_paths("cannot open file:///srv/ll/a.joblib (errno 2)") == "cannot open <path> (errno 2)"
    assert without_paths("No such file: '/home/u/x.joblib'") == "No such file: '<path>'"
    kept = "artifact models/m/v2-ab was saved with scikit-learn 0.0.1: retrain it"
    assert without_paths(kept) == kept
