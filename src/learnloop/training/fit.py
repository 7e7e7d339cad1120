"""Fit one candidate and score it (and the champion) on the evaluation sets.

``fit_and_score`` takes a plain, picklable ``TrainSpec`` so it runs the same in this
process (``learnloop init``) or in a child process (the worker), where a long fit cannot
stall the server's request handling.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learnloop.families import get_family
from learnloop.registry.artifacts import LocalArtifactStore, load_predictor, save_predictor


@dataclass(frozen=True)
class TrainSpec:
    family: str
    params: dict[str, Any]
    label_set: list[str]
    texts: list[str]
    labels: list[str]
    eval_sets: dict[str, list[str]]  # name -> texts (labels stay with the caller)
    artifact_root: str
    artifact_key: str
    champion_uri: str | None = None
    seed: int = 0
    manifest_extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    artifact_uri: str
    train_seconds: float
    candidate: dict[str, list[str]]  # eval set -> predicted labels
    champion: dict[str, list[str]] | None


def _predict_labels(predictor: Any, texts: list[str]) -> list[str]:
    if not texts:
        return []
    proba = predictor.predict_proba(texts)
    labels = predictor.labels
    return [labels[i] for i in proba.argmax(axis=1)]


def fit_and_score(spec: TrainSpec) -> TrainResult:
    store = LocalArtifactStore(Path(spec.artifact_root))
    family = get_family(spec.family)
    started = time.perf_counter()
    predictor = family.fit(spec.texts, spec.labels, label_set=spec.label_set, params=spec.params, seed=spec.seed)
    train_seconds = time.perf_counter() - started
    uri = save_predictor(store, spec.artifact_key, spec.family, predictor, spec.manifest_extra)
    candidate = {name: _predict_labels(predictor, texts) for name, texts in spec.eval_sets.items()}
    champion = None
    if spec.champion_uri is not None:
        old = load_predictor(store, spec.champion_uri)
        champion = {name: _predict_labels(old, texts) for name, texts in spec.eval_sets.items()}
    return TrainResult(uri, train_seconds, candidate, champion)


def child_initializer() -> None:
    """Run in the training process: one BLAS thread, low priority beside the server, and
    ended by the kernel if the server dies (else a killed server would leave it behind)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(5)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not available: the pool's own checks remain
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
