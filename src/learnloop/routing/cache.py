"""Loaded models and hot swaps.

The cache holds, per model, the champion's predictor and the previous champion's (so a
rollback is a pointer swap, not a load), and during a rollout the challenger's and the
baseline's. A routing change (promote, rollback, a rollout started, stepped or ended, from
this or any other process) bumps the model's ``deployments.revision``; ``refresh`` notices,
loads what is new *before* switching, then replaces one immutable ``Route`` object: a request
either sees the old route or the new one, never half of each, and none waits for a load.
A version whose artifact cannot be loaded is refused with a clear error and the current
route keeps serving.

A version of a generative model is served by a ``Generator``: an in-process one from the
``GeneratorPool`` the composition root gives (one engine per base, adapters attached to it),
or, for a model whose answers are made elsewhere, a stand-in that refuses to generate and says
where answers come from. A process given no pool (a worker) serves no generative model.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from learnloop.artifacts import ArtifactStore
from learnloop.domain import Model, ModelVersion, Strategy
from learnloop.errors import (
    ArtifactError,
    ModelUnavailableError,
    NotFoundError,
    ValidationError,
    WrongTaskError,
    without_paths,
)
from learnloop.families import AnsweredElsewhere, ExternalFamily, Generator, Predictor
from learnloop.families.base import BatchedPrediction
from learnloop.families.manifest import load_predictor
from learnloop.routing.split import in_share
from learnloop.store.db import Database
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import rollouts as rollout_repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedVersion:
    """A loaded version: a classifier's ``predictor`` or a generative model's ``generator``."""

    version: int
    predictor: Predictor | None = None
    generator: Generator | None = None

    @property
    def classifier(self) -> Predictor:
        if self.predictor is None:
            raise WrongTaskError(
                "this model generates text (task generation): ask it with .../generate, not .../predict"
            )
        return self.predictor

    @property
    def generative(self) -> Generator:
        if self.generator is None:
            raise WrongTaskError("this model classifies text: ask it with .../predict, not .../generate")
        return self.generator


class GeneratorPool(Protocol):
    """Serves generative versions in this process (``routing.generators``)."""

    def load(self, model: Model, version: ModelVersion) -> Generator: ...

    def release(self, model: str, version: int) -> None: ...


@dataclass(frozen=True)
class LiveRollout:
    """A rollout as the request path sees it."""

    id: int
    strategy: Strategy
    share: float
    baseline: LoadedVersion  # arm A (the champion, unless an A/B test names another version)
    challenger: LoadedVersion  # arm B


@dataclass(frozen=True)
class Route:
    model: Model
    revision: int
    champion: LoadedVersion | None
    previous: LoadedVersion | None
    error: str | None = None  # why the champion could not be loaded
    rollout: LiveRollout | None = None

    def pick(self, key: str) -> tuple[LoadedVersion, str]:
        """The version that answers a request with this sticky key, and the route's name:
        ``champion``, ``canary`` (arm B of a canary or A/B test) or ``baseline`` (arm A of an
        A/B test whose baseline is not the champion)."""
        r = self.rollout
        if r is not None and r.strategy in (Strategy.CANARY, Strategy.AB):
            if in_share(r.id, key, r.share):
                return r.challenger, "canary"
            if self.champion is None or r.baseline.version != self.champion.version:
                return r.baseline, "baseline"
        if self.champion is None:
            raise ModelUnavailableError(
                f"model {self.model.name!r} has no servable champion" + (f": {self.error}" if self.error else "")
            )
        return self.champion, "champion"

    def shadow_for(self, key: str) -> LiveRollout | None:
        """The shadow rollout that should also answer this request, if any."""
        r = self.rollout
        if r is not None and r.strategy == Strategy.SHADOW and in_share(r.id, key, r.share):
            return r
        return None


class ModelCache:
    def __init__(self, db: Database, store: ArtifactStore, generators: GeneratorPool | None = None) -> None:
        self._db = db
        self._store = store
        self._generators = generators
        self._serving = False
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

    def batches(self, model: str) -> bool:
        """Whether every version that may answer a prediction of ``model`` (the champion, and a
        rollout's both arms: canary, A/B or shadow) batches its single-text predictions off the
        event loop (``BatchedPrediction``). Reads the route in place: False for a model not
        loaded yet (its first request loads it), never a database read."""
        route = self._routes.get(model)
        if route is None or route.champion is None:
            return False
        serving = [route.champion]
        if route.rollout is not None:
            serving += [route.rollout.baseline, route.rollout.challenger]
        return all(isinstance(lv.predictor, BatchedPrediction) for lv in serving)

    def champion(self, model: str) -> LoadedVersion:
        route = self.route(model)
        if route.champion is None:
            raise ModelUnavailableError(
                f"model {model!r} has no servable champion" + (f": {route.error}" if route.error else "")
            )
        return route.champion

    def load(self, model: Model, version: ModelVersion) -> LoadedVersion:
        key = (model.name, version.version)
        loaded = self._loaded.get(key)
        if loaded is None:
            loaded = self._load(model, version)
            self._loaded[key] = loaded
        return loaded

    def _load(self, model: Model, version: ModelVersion) -> LoadedVersion:
        version.check_artifact()
        if version.family == ExternalFamily.key:  # answers made elsewhere: nothing to load
            return LoadedVersion(version.version, generator=AnsweredElsewhere(model.name))
        if model.task == "generation":
            if self._generators is None:
                raise ModelUnavailableError(f"this process serves no generative model ({model.name!r})")
            return LoadedVersion(version.version, generator=self._generators.load(model, version))
        return LoadedVersion(version.version, predictor=load_predictor(self._store, version.artifact_uri))

    def serve(self) -> None:
        """This process serves requests (an API replica): load every model's route now, and
        load new models on a routing change made here."""
        self._serving = True
        self.refresh()

    def refresh_served(self, model: str) -> None:
        """After a routing change made in this process: refresh ``model``'s route now (no wait
        for the poll) where this process serves requests or has loaded it; elsewhere (a CLI
        command) nothing is loaded."""
        if self._serving or model in self._routes:
            self.refresh(model)

    def refresh(self, model: str | None = None) -> None:
        """Bring routes up to date with the database (one model, or all)."""
        with self._lock:
            with self._db.read() as conn:
                revisions = model_repo.routing_revisions(conn)
            # Refreshing all also drops the routes of models deleted meanwhile (by any process).
            names = [model] if model is not None else sorted(set(revisions) | set(self._routes))
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
            model = model_repo.get_model(conn, name)
            deployment = model_repo.get_deployment(conn, name)
            rollout = rollout_repo.active_rollout(conn, name)
            wanted = [deployment.champion_version, deployment.previous_version]
            if rollout is not None:
                wanted += [rollout.baseline_version, rollout.version]
            versions = {v: model_repo.get_version(conn, name, v) for v in wanted if v is not None}
        loaded: dict[int, LoadedVersion | None] = {}
        error = None
        for number, version in versions.items():
            try:
                loaded[number] = self.load(model, version)
            except (ArtifactError, NotFoundError, ValidationError, ModelUnavailableError) as exc:
                log.error("model %s version %s refuses to load: %s", name, number, exc)
                loaded[number] = None
                if number == deployment.champion_version:
                    # Said to unauthenticated clients (/health, 503s): paths stay in the log above.
                    error = f"version {number} refuses to load: {without_paths(str(exc))}"
        champion = loaded.get(deployment.champion_version) if deployment.champion_version else None
        if champion is None and current is not None and current.champion is not None and error:
            # Keep serving what works rather than nothing.
            log.error("model %s keeps serving version %s", name, current.champion.version)
            champion = current.champion
        previous = loaded.get(deployment.previous_version) if deployment.previous_version else None
        live = None
        if rollout is not None:
            baseline, challenger = loaded.get(rollout.baseline_version), loaded.get(rollout.version)
            if baseline is not None and challenger is not None:
                live = LiveRollout(rollout.id, rollout.strategy, rollout.share, baseline, challenger)
            else:  # the champion keeps all traffic; the worker ends the rollout
                log.error("model %s: rollout %s has a version that refuses to load", name, rollout.id)
        return Route(model, deployment.revision, champion, previous, error, live)

    def _evict(self) -> None:
        keep = set()
        for name, route in self._routes.items():
            live = route.rollout
            held = (route.champion, route.previous) + ((live.baseline, live.challenger) if live else ())
            for lv in held:
                if lv is not None:
                    keep.add((name, lv.version))
        for key in list(self._loaded):
            if key not in keep:
                gone = self._loaded.pop(key)
                if gone.generator is not None and self._generators is not None:
                    self._generators.release(*key)

    def model_names(self) -> list[str]:
        return sorted(self._routes)
