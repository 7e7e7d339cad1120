"""Creating a model, as one use case for ``learnloop init`` and ``POST /v1/models``.

In order: check the name (free, well-formed), the task, the family and its parameters and the
policy, before any data is read; read and check the data (``models.data``); hold out the
golden set; fit version 1 in the training runner (the isolated training process in a server);
then store the model, its data, its snapshot and version 1 as champion in one transaction.

All or nothing: nothing reaches the database before that transaction, and the artifacts this
attempt wrote (the snapshot's rows, version 1, its drift reference) are removed when anything
fails, so a failed attempt leaves nothing behind and a second one starts clean.

A generative model (task ``generation``): with ``backend="external"`` its answers are made
elsewhere and logged (``POST /v1/models/{model}/generations``): version 1 is a version of the
``external`` family with no artifact, and it takes no data. With ``backend="local"`` learnloop
serves it in process (family ``causal-lm-lora``, params ``base`` and ``system_prompt``).
Without data, version 1 is the base model itself (no adapter), checked to exist but not loaded
here (the server converts and loads it on first use). With prompt/response rows
(``models.pairs``), version 1 is a LoRA adapter fitted on them in the training runner
(``tasks.generation.adapter_fit``; the base is converted into ``bases_dir`` once), stored under
the version's own key, its fine-tuning settings in the params (``sft``) and what the fit did in
the metrics. Either is champion at once, and all or nothing as above.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learnloop import __version__
from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.config import Limits
from learnloop.domain import Model, ModelVersion, VersionStatus
from learnloop.drift import reference as drift_reference
from learnloop.errors import ConflictError, DataError, NotFoundError, ValidationError
from learnloop.families import DEFAULT_FAMILY, ExternalFamily, LoraFamily, get_family
from learnloop.families.lora import check_sft
from learnloop.ids import new_id
from learnloop.models.data import BootstrapData, DataSource, check_options, prepare
from learnloop.models.pairs import check_pair_options, prepare_pairs
from learnloop.policy import Policy
from learnloop.registry.service import RegistryService, check_model_name
from learnloop.selection import check_selection
from learnloop.tasks import DEFAULT_TASK, RetrainInputs, get_task
from learnloop.tasks.classification.retrain import grouping_key
from learnloop.tasks.generation import GenerationTask
from learnloop.tasks.generation.adapter_fit import AdapterSpec, FittedAdapter, fit_adapter
from learnloop.training.cost import measured
from learnloop.training.pipeline import TrainingService, within

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    pass


def default_policy(task: str) -> Policy:
    """The policy a new model of ``task`` starts from: the defaults, with the task's own over
    them (``Task.policy_defaults``: a generative model retrains every 100 training events);
    what the user sets goes over this."""
    return Policy.of(**get_task(task).policy_defaults)


@dataclass(frozen=True)
class NewModel:
    """What to create; the data comes separately (a ``FileSource`` or ``RowsSource``)."""

    name: str
    family: str = DEFAULT_FAMILY
    params: Mapping[str, Any] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)  # changes to the default policy, by flat name
    task: str = DEFAULT_TASK
    golden_fraction: float = 0.2
    seed: int = 0
    backend: str = "local"  # generation: "local" (in-process) or "external" (answers made elsewhere)


@dataclass(frozen=True)
class CreatedModel:
    model: Model
    version: ModelVersion  # version 1, the champion
    data: BootstrapData


@dataclass(frozen=True)
class _Checked:
    params: dict[str, Any]
    policy: Policy


class ModelCreation:
    def __init__(
        self,
        registry: RegistryService,
        training: TrainingService,
        store: ArtifactStore,
        clock: Clock,
        limits: Limits,
        bases_dir: Path,
    ) -> None:
        self.registry = registry
        self.training = training
        self.store = store
        self.clock = clock
        self.limits = limits
        self.bases_dir = bases_dir  # where a GGUF base is converted, once per home

    def _check(self, request: NewModel, source: DataSource) -> _Checked:
        """Everything that can be refused before the data is read."""
        try:
            check_model_name(request.name)
        except ValidationError as exc:
            raise ValidationError(exc.message, field="name") from None
        params = get_family(request.family).resolve_params(dict(request.params))
        policy = default_policy(request.task).updated(dict(request.policy))
        check_selection(request.family, params, policy.selection, request.task)
        check_options(source, request.golden_fraction)
        try:
            self.registry.get_model(request.name)
        except NotFoundError:
            return _Checked(params, policy)
        raise ConflictError(f"model {request.name!r} already exists", field="name")

    def create(
        self, request: NewModel, source: DataSource | None, *, actor: str, progress: Progress = _no_progress
    ) -> CreatedModel:
        if request.task == GenerationTask.key or request.backend != "local":
            return self._create_generative(request, source, actor, progress)
        if source is None:
            raise ValidationError(f"a {request.task} model is created from labelled data", field="data")
        checked = self._check(request, source)
        progress(0.0, f"reading {source.described}")
        data = prepare(
            source,
            golden_fraction=request.golden_fraction,
            seed=request.seed,
            max_labels=self.limits.max_labels,
            limits=self.limits,
        )
        now = self.clock.now()
        model = Model(
            name=request.name,
            task=request.task,
            labels=tuple(data.labels),
            family=request.family,
            params=checked.params,
            policy=checked.policy,
            created_at=now,
        )
        # A key of this attempt's own: a failure removes exactly what it wrote.
        key = f"models/{model.name}/v1-{new_id()[-12:]}"
        inputs = self.training.first_inputs(model, data.train, data.golden, now, key)
        # (the grouping is a cache: removing one another attempt made costs it a regrouping)
        written: list[str] = [key, drift_reference.reference_key(model.name, key), grouping_key(model.name)]
        try:
            version = self._train_and_store(inputs, data, actor, progress, written)
        except BaseException:
            self._discard(model.name, written)
            raise
        return CreatedModel(self.registry.get_model(model.name), version, data)

    def _create_generative(
        self, request: NewModel, source: DataSource | None, actor: str, progress: Progress
    ) -> CreatedModel:
        """A generative model, champion at once: version 1 is the base model itself (backend
        ``local``, family ``causal-lm-lora``), an adapter fitted on ``source``'s prompt/response
        rows (backend ``local`` with data), or answers made elsewhere (backend ``external``,
        family ``external``)."""
        if request.task != GenerationTask.key:
            raise ValidationError(
                f"backend {request.backend!r} is for generative models (task generation)", field="backend"
            )
        if request.backend not in ("local", "external"):
            raise ValidationError(f"unknown backend {request.backend!r}; use local or external", field="backend")
        if source is not None and request.backend == "external":
            raise ValidationError(
                "a model whose answers are made elsewhere takes no data; fit an adapter on prompt/response rows "
                "with backend local",
                field="data",
            )
        family = ExternalFamily.key if request.backend == "external" else LoraFamily.key
        if request.family not in (DEFAULT_FAMILY, family):
            raise ValidationError(
                f"a generative model with backend {request.backend!r} is of family {family!r}, not {request.family!r}",
                field="family",
            )
        try:
            check_model_name(request.name)
        except ValidationError as exc:
            raise ValidationError(exc.message, field="name") from None
        params = get_family(family).resolve_params(dict(request.params))
        policy = default_policy(GenerationTask.key).updated(dict(request.policy))
        if source is not None:
            check_pair_options(source)
            params["sft"] = check_sft(params.get("sft") or {})
        try:
            self.registry.get_model(request.name)
            raise ConflictError(f"model {request.name!r} already exists", field="name")
        except NotFoundError:
            pass
        now = self.clock.now()
        model = Model(request.name, GenerationTask.key, (), family, params, policy, now)
        if source is not None:
            return self._create_adapter(model, source, request.seed, actor, progress)
        first = ModelVersion(
            model=model.name,
            version=0,
            status=VersionStatus.CANDIDATE,
            family=family,
            params=params,
            snapshot_hash=None,
            parent_version=None,
            code_version=__version__,
            metrics={},
            verdict=None,
            artifact_uri="",
            created_at=now,
            status_reason="answers made elsewhere" if family == ExternalFamily.key else "the base model, no adapter",
        )
        version = self.registry.create_with_champion(
            model, train=[], golden=[], source=request.backend, candidate=None, first=first, actor=actor
        )
        data = BootstrapData(train=[], golden=[], labels=[], rows=0, source=request.backend)
        return CreatedModel(self.registry.get_model(model.name), version, data)

    def _create_adapter(
        self, model: Model, source: DataSource, seed: int, actor: str, progress: Progress
    ) -> CreatedModel:
        """Version 1 as a LoRA adapter fitted on ``source``'s rows in the training runner;
        the adapter is removed again if anything fails before the model is stored."""
        progress(0.0, f"reading {source.described}")
        data = prepare_pairs(source, model.policy.generation)
        spec = AdapterSpec(
            base=str(model.params["base"]),
            bases_dir=str(self.bases_dir),
            rows=data.train,
            sft=dict(model.params["sft"]),
            system_prompt=model.params.get("system_prompt"),
            artifact_url=self.training.artifact_url,
            artifact_key=f"models/{model.name}/v1-{new_id()[-12:]}",
            seed=seed,
        )
        progress(0.1, f"fitting a LoRA adapter on {data.rows} rows in the training process")
        try:
            try:
                fitted: FittedAdapter
                fitted, cost = self.training.runner.run(measured, (fit_adapter, spec), within(progress, 0.1, 0.9))
            except ValueError as exc:  # what the trainer says of rows it cannot learn from
                log.info("version 1 of %s could not be fitted", model.name, exc_info=True)
                raise DataError(f"no adapter could be fitted on {data.source}: {exc}", field="data") from exc
            progress(0.95, "storing the model and version 1")
            first = ModelVersion(
                model=model.name,
                version=0,
                status=VersionStatus.CANDIDATE,
                family=model.family,
                params=model.params,
                snapshot_hash=None,
                parent_version=None,
                code_version=__version__,
                metrics={
                    "train_loss": fitted.train_loss,
                    "steps": fitted.steps,
                    "rows": data.rows,
                    "seconds": round(fitted.seconds, 3),
                },
                verdict=None,
                artifact_uri=fitted.artifact_key,
                created_at=self.clock.now(),
                status_reason=f"a LoRA adapter fitted on {data.rows} rows of {data.source}",
                train_seconds=fitted.seconds,
                cost=cost,
            )
            version = self.registry.create_with_champion(  # its rows train every later adapter too
                model, train=data.train, golden=[], source=data.source, candidate=None, first=first, actor=actor
            )
        except BaseException:
            self._discard(model.name, [spec.artifact_key])
            raise
        progress(1.0, f"version {version.version} is champion")
        return CreatedModel(self.registry.get_model(model.name), version, data)

    def _train_and_store(
        self, inputs: RetrainInputs, data: BootstrapData, actor: str, progress: Progress, written: list[str]
    ) -> ModelVersion:
        model = inputs.model
        progress(0.1, f"training version 1 on {len(data.train)} rows in the training process")
        try:
            candidate = self.training.train(inputs, progress, span=(0.1, 0.9))
        except ValueError as exc:  # what a family's fit says of data it cannot learn from
            log.info("version 1 of %s could not be fitted", model.name, exc_info=True)
            raise DataError(
                f"version 1 could not be trained on {data.source} ({model.family}: {exc})", field="data"
            ) from exc
        written.append(candidate.snapshot_key)
        progress(0.95, "storing the model and version 1")
        version = self.registry.create_with_champion(
            model,
            train=data.train,
            golden=data.golden,
            source=data.source,
            candidate=candidate,
            first=self.training.draft(inputs, candidate, "bootstrap version"),
            actor=actor,
            golden_metadata=data.golden_metadata,
        )
        progress(1.0, f"version {version.version} is champion")
        return version

    def _discard(self, name: str, keys: list[str]) -> None:
        """Remove the artifacts a failed attempt may have written (not the snapshot's rows when
        another model stored the same content under this name: a model of this name exists then)."""
        try:
            self.registry.get_model(name)  # created meanwhile by another attempt: its snapshot stays
            keys = [k for k in keys if not k.startswith("snapshots/")]
        except NotFoundError:
            pass
        except Exception:  # the database is what failed: leave the shared snapshot, remove the rest
            log.exception("could not tell whether %s exists after a failed creation", name)
            keys = [k for k in keys if not k.startswith("snapshots/")]
        for stale in keys:
            try:
                self.store.delete(stale)
            except Exception:  # the failure that brought us here is the one to report
                log.exception("could not remove %s after a failed creation of %s", stale, name)
