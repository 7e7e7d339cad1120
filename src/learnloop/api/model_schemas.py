"""Request and response schemas of creating and deleting a model (``POST /v1/models``,
``DELETE /v1/models/{model}``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, field_validator, model_validator

from learnloop.api.examples import CREATE_MODEL_JSON, CREATE_MODEL_UPLOAD
from learnloop.api.schemas import ModelDetail
from learnloop.datasets.label_names import check_label_names
from learnloop.errors import ValidationError
from learnloop.families import DEFAULT_FAMILY, ModelFamily
from learnloop.families.base import family_listing
from learnloop.feedback.items import label_str
from learnloop.models import CreatedModel, DeletionReport, FileSource, NewModel, RowsSource
from learnloop.tasks import DEFAULT_TASK

_NAME = "Model name: 1-64 characters of a-z, 0-9, '-' and '_'."
_FRACTION = "Share of the data held out as the golden set (0.05 to 0.5), stratified by label."
_PARAMS = 'Family parameters, e.g. {"C": 4.0}.'
_POLICY = 'Policy settings by name, e.g. {"retrain_every": 100}.'
_LABEL_NAMES = (
    'classification: names for the data\'s label values, e.g. {"0": "negative", "1": "positive"}; the model '
    "learns, answers and takes feedback in the names (as learnloop init --label-names)."
)


class ModelRow(BaseModel):
    """A labelled example (``text``, ``label``: a classifier's) or a prompt and the response a
    generative model should give (``prompt``, ``response``: its first adapter's data)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1, max_length=128)
    prompt: str | None = Field(default=None, min_length=1)
    response: str | None = Field(default=None, min_length=1)
    metadata: dict[str, str | int | float | bool | None] | None = Field(
        default=None,
        description="A labelled row's attributes (flat, bounded as a prediction's), kept with the golden rows: "
        "fairness figures on the golden set by these fields. Never a feature.",
    )

    _label = field_validator("label", mode="before")(label_str)

    @model_validator(mode="after")
    def _one_kind(self) -> ModelRow:
        labelled = (self.text, self.label) != (None, None)
        paired = (self.prompt, self.response) != (None, None)
        if labelled == paired:
            raise ValueError("a row is {text, label} (a classifier) or {prompt, response} (a generative model)")
        return self

    def labelled(self) -> tuple[str, str] | None:
        return None if self.text is None or self.label is None else (self.text, self.label)

    def pair(self) -> tuple[str, str] | None:
        return None if self.prompt is None or self.response is None else (self.prompt, self.response)


class _ModelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description=_NAME)
    family: str = Field(default=DEFAULT_FAMILY, description="Model family key.")
    task: str = Field(default=DEFAULT_TASK, description="What the model does: classification or generation.")
    golden_fraction: float = Field(default=0.2, description=_FRACTION)
    seed: int = Field(default=0, description="Seed of the golden split and of the fit.")
    backend: Literal["local", "external"] = Field(
        default="local",
        description="generation: local (in-process) or external (answers made elsewhere, logged with "
        "POST /v1/models/{model}/generations; no data needed).",
    )
    system_prompt: str | None = Field(
        default=None, min_length=1, description="generation: the system prompt the model answers under."
    )

    def new_model(self, params: dict[str, Any] | None, policy: dict[str, Any] | None) -> NewModel:
        given = dict(params or {})
        if self.system_prompt is not None:
            given["system_prompt"] = self.system_prompt
        return NewModel(
            name=self.name,
            family=self.family,
            params=given,
            policy=policy or {},
            task=self.task,
            golden_fraction=self.golden_fraction,
            seed=self.seed,
            backend=self.backend,
        )

    def checked_label_names(self, names: dict[str, str] | None) -> dict[str, str]:
        """``names`` checked as the CLI's ``--label-names`` are, before any data is read."""
        if not names:
            return {}
        if self.task != DEFAULT_TASK:
            raise ValidationError("label_names names the label values of a classifier's data", field="label_names")
        check_label_names(names)
        return names


class ModelCreate(_ModelOptions):
    """A JSON body: the rows themselves."""

    rows: list[ModelRow] = Field(
        default_factory=list,
        description="Labelled examples ({text, label}: a classifier needs them) or prompt/response rows "
        "({prompt, response}: a local generative model's version 1 is a LoRA adapter fitted on them; without "
        "rows it is the base model).",
    )
    params: dict[str, Any] = Field(default_factory=dict, description=_PARAMS)
    policy: dict[str, Any] = Field(default_factory=dict, description=_POLICY)
    label_names: dict[str, str] = Field(default_factory=dict, description=_LABEL_NAMES)

    def request(self) -> tuple[NewModel, RowsSource | None]:
        new = self.new_model(self.params, self.policy)
        names = self.checked_label_names(self.label_names)
        if not self.rows:
            if new.task == DEFAULT_TASK:
                raise ValidationError("a classification model needs at least one row", field="rows")
            return new, None
        generative = new.task != DEFAULT_TASK
        rows = [row.pair() if generative else row.labelled() for row in self.rows]
        given = [row for row in rows if row is not None]
        if len(given) < len(rows):
            shape = "{prompt, response}" if generative else "{text, label}"
            raise ValidationError(f"a {new.task} model's rows are {shape} objects", field="rows")
        metadata = [row.metadata for row in self.rows] if any(row.metadata for row in self.rows) else []
        return new, RowsSource(given, name="request rows", label_names=names, metadata=metadata)


class ModelUpload(_ModelOptions):
    """The form fields of a multipart upload, beside the ``file`` part."""

    text_column: str = Field(default="text", description="Column (or JSON field) holding the text.")
    label_column: str = Field(default="label", description="Column (or JSON field) holding the label.")
    prompt_column: str = Field(default="prompt", description="generation: column (or JSON field) of the prompt.")
    response_column: str = Field(
        default="response", description="generation: column (or JSON field) of the response to learn."
    )
    format: str | None = Field(default=None, description="csv, tsv or jsonl (default: from the file name).")
    header: bool = Field(default=True, description="false: the file has no header; columns are 0, 1, ...")
    quoting: str | None = Field(default=None, description="TSV quoting: none (default) or csv.")
    params: Json[dict[str, Any]] | None = Field(default=None, description=_PARAMS + " As JSON text.")
    policy: Json[dict[str, Any]] | None = Field(default=None, description=_POLICY + " As JSON text.")
    label_names: Json[dict[str, str]] | None = Field(default=None, description=_LABEL_NAMES + " As JSON text.")

    def request(self, path: Any, filename: str) -> tuple[NewModel, FileSource]:
        generative = self.task != DEFAULT_TASK
        names = self.checked_label_names(self.label_names)
        source = FileSource(
            path,
            self.prompt_column if generative else self.text_column,
            self.response_column if generative else self.label_column,
            fmt=self.format,
            header=self.header,
            quoting=self.quoting,
            name=filename,
            label_names=names,
        )
        return self.new_model(self.params, self.policy), source


class ParamPublic(BaseModel):
    name: str
    type: str = Field(description="int, float, bool, str, or the values allowed (word | char_wb); null: may be null.")
    default: Any
    description: str


class FamilyPublic(BaseModel):
    family: str
    task: str
    summary: str
    parameters: list[ParamPublic]

    @classmethod
    def of(cls, family: ModelFamily) -> FamilyPublic:
        return cls.model_validate(family_listing(family))


class CreationData(BaseModel):
    source: str
    rows: int = Field(description="Usable rows read.")
    skipped: dict[str, int] = Field(
        description="Rows left out, by reason (empty_text, missing_label; generation: empty_prompt, "
        "empty_response, prompt_too_long, response_too_long)."
    )
    train: int
    golden: int


class ModelCreated(ModelDetail):
    data: CreationData

    @classmethod
    def of_created(cls, detail: ModelDetail, created: CreatedModel) -> ModelCreated:
        d = created.data
        data = CreationData(source=d.source, rows=d.rows, skipped=d.skipped, train=len(d.train), golden=len(d.golden))
        return cls(**detail.model_dump(), data=data)


class ModelDeleted(BaseModel):
    model: str
    rows: dict[str, int] = Field(description="Rows deleted, per table.")
    versions: list[int]
    artifacts: int = Field(description="Files and directories removed from the artifact store.")
    snapshots_kept: dict[str, str] = Field(
        description="Snapshots another model was trained on too: they stay, now that model's (hash -> model)."
    )

    @classmethod
    def of(cls, report: DeletionReport) -> ModelDeleted:
        return cls.model_validate(report.to_dict())


def create_body_openapi() -> dict[str, Any]:
    """The two bodies ``POST /v1/models`` takes, for the OpenAPI document (read by hand)."""
    upload = _inlined(ModelUpload.model_json_schema())
    upload["properties"]["file"] = {"type": "string", "format": "binary", "description": "CSV, TSV or JSONL (.gz)."}
    upload["required"] = [*upload.get("required", []), "file"]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": upload, "examples": CREATE_MODEL_UPLOAD},
                "application/json": {
                    "schema": _inlined(ModelCreate.model_json_schema()),
                    "examples": CREATE_MODEL_JSON,
                },
            },
        }
    }


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` written in place (an OpenAPI body cannot point into them)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined
