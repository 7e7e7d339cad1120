"""Generative versions served in this process: one generation engine per base model, shared
by every version on that base (a version is an adapter on it, or the base itself).

A base is converted (a GGUF shipped by a package) into the home's ``bases`` folder once, then
loaded once per process; a new version's adapter is attached to the running engine between
batches, and detached when the routing cache no longer holds the version. Loading happens on
the routing cache's refresh, never on a request's path.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from learnloop.artifacts import ArtifactStore
from learnloop.config import GenerationSettings
from learnloop.domain import Model, ModelVersion
from learnloop.errors import ValidationError
from learnloop.families.causal_lm import GenerationEngine, load_base, resolve_base
from learnloop.families.causal_lm.serving import LocalGenerator
from learnloop.families.generation import Generator
from learnloop.telemetry import GenerationMetrics

log = logging.getLogger(__name__)


def adapter_name(model: str, version: int) -> str:
    return f"{model}@{version}"


class LocalGeneratorPool:
    def __init__(
        self, store: ArtifactStore, bases_dir: Path, settings: GenerationSettings, metrics: GenerationMetrics
    ) -> None:
        self._store = store
        self._bases_dir = bases_dir
        self._settings = settings
        self._metrics = metrics
        self._engines: dict[str, GenerationEngine] = {}  # by the base's directory
        self._attached: dict[str, GenerationEngine] = {}  # adapter name -> its engine
        self._lock = threading.Lock()

    def load(self, model: Model, version: ModelVersion) -> Generator:
        base = version.params.get("base")
        if not isinstance(base, str):
            raise ValidationError(f"version {version.version} of {model.name!r} names no base model", field="base")
        engine = self._engine(base)
        adapter = None
        if version.artifact_uri:
            adapter = adapter_name(model.name, version.version)
            if adapter not in engine.loaded.adapters:
                engine.attach_adapter(adapter, self._store.get_dir(version.artifact_uri))
            with self._lock:
                self._attached[adapter] = engine
        system_prompt = version.params.get("system_prompt")
        return LocalGenerator(engine, adapter, system_prompt if isinstance(system_prompt, str) else None)

    def release(self, model: str, version: int) -> None:
        name = adapter_name(model, version)
        with self._lock:
            engine = self._attached.get(name)
        if engine is None:
            return
        # Forget it only once it is detached: a failed detach leaves it known, so a later
        # release (or load) still finds the adapter the engine holds.
        engine.detach_adapter(name)
        with self._lock:
            if self._attached.get(name) is engine:
                del self._attached[name]

    def engines(self) -> list[GenerationEngine]:
        with self._lock:
            return list(self._engines.values())

    def close(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()

    def _engine(self, base: str) -> GenerationEngine:
        with self._lock:
            ref = resolve_base(base, self._bases_dir)  # converts a GGUF base once per home
            key = str(ref.path)
            engine = self._engines.get(key)
            if engine is None:
                log.info("loading base model %s from %s", ref.name, ref.path)
                s = self._settings
                engine = GenerationEngine(
                    load_base(ref, threads=s.threads),
                    max_batch=s.max_batch,
                    batch_wait_ms=s.batch_wait_ms,
                    max_queue=s.max_queue,
                    metrics=self._metrics,
                )
                self._engines[key] = engine
            return engine
