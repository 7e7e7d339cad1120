"""Loaded models and hot swaps.

The cache holds, per model, the champion's predictor and the previous champion's (so a
rollback is a pointer swap, not a load). A routing change (promote, rollback, from this or
any other process) bumps the model's ``deployments.revision``; ``refresh`` notices, loads
what is new *before* switching, then replaces one immutable ``Route`` object: a request
either sees the old route or the new one, never half of each, and none waits for a load.
A version whose artifact cannot be loaded is refused with a clear error and the current
route keeps serving.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from learnloop.domain import Model
from learnloop.errors import ArtifactError, LearnloopError, NotFoundError
from learnloop.families import Predictor
from learnloop.registry.artifacts import ArtifactStore, load_predictor
from learnloop.store import repositories as repo
from learnloop.store.db import Database

log = logging.getLogger(__name__)


class ModelUnavailableError(LearnloopError):
    code = "model_unavailable"


@dataclass(frozen=True)
class LoadedVersion:
    version: int
    predictor: Predictor


@dataclass(frozen=True)
class Route:
    model: Model
    revision: int
    champion: LoadedVersion | None
    previous: LoadedVersion | None
    error: str | None = None  # why the champion could not be loaded


class ModelCache:
    def __init__(self, db: Database, store: ArtifactStore) -> None:
        self._db = db
        self._store = store
        self._routes: dict[str, Route] = {}
        self._loaded: dict[tuple[str, int], LoadedVersion] = {}
        self._lock = threading.Lock()  # serialises refreshes, never taken on the request path

    def route(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            self.refresh(model)
            route = self._routes.get(model)
            if route is None:
                raise NotFoundError(f"model {model!r} not found", field="model")
        return route

    def champion(self, model: str) -> LoadedVersion:
        route = self.route(model)
        if route.champion is None:
            raise ModelUnavailableError(
                f"model {model!r} has no servable champion" + (f": {route.error}" if route.error else "")
            )
        return route.champion

    def load(self, model: str, version: int, artifact_uri: str) -> LoadedVersion:
        key = (model, version)
        loaded = self._loaded.get(key)
        if loaded is None:
            loaded = LoadedVersion(version, load_predictor(self._store, artifact_uri))
            self._loaded[key] = loaded
        return loaded

    def refresh(self, model: str | None = None) -> None:
        """Bring routes up to date with the database (one model, or all)."""
        with self._lock:
            with self._db.read() as conn:
                revisions = repo.routing_revisions(conn)
            names = [model] if model is not None else list(revisions)
            for name in names:
                if name not in revisions:
                    self._routes.pop(name, None)
                    continue
                current = self._routes.get(name)
                if current is not None and current.revision == revisions[name]:
                    continue
                self._routes[name] = self._build_route(name, current)
            self._evict()

    def _build_route(self, name: str, current: Route | None) -> Route:
        with self._db.read() as conn:
            model = repo.get_model(conn, name)
            deployment = repo.get_deployment(conn, name)
            versions = {
                v: repo.get_version(conn, name, v)
                for v in (deployment.champion_version, deployment.previous_version)
                if v is not None
            }
        loaded: dict[int, LoadedVersion | None] = {}
        error = None
        for number, version in versions.items():
            try:
                loaded[number] = self.load(name, number, version.artifact_uri)
            except (ArtifactError, NotFoundError) as exc:
                log.error("model %s version %s refuses to load: %s", name, number, exc)
                loaded[number] = None
                if number == deployment.champion_version:
                    error = f"version {number} refuses to load: {exc}"
        champion = loaded.get(deployment.champion_version) if deployment.champion_version else None
        if champion is None and current is not None and current.champion is not None and error:
            # Keep serving what works rather than nothing.
            log.error("model %s keeps serving version %s", name, current.champion.version)
            champion = current.champion
        previous = loaded.get(deployment.previous_version) if deployment.previous_version else None
        return Route(model, deployment.revision, champion, previous, error)

    def _evict(self) -> None:
        keep = set()
        for name, route in self._routes.items():
            for lv in (route.champion, route.previous):
                if lv is not None:
                    keep.add((name, lv.version))
        for key in list(self._loaded):
            if key not in keep:
                del self._loaded[key]

    def model_names(self) -> list[str]:
        return sorted(self._routes)
