"""Response schema of ``GET /v1/models/{model}/fairness`` (``monitoring.fairness``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from learnloop.monitoring.fairness import FairnessReport


class EstimatePublic(BaseModel):
    value: float | None = Field(description="The figure; null when the group has no rows for it.")
    n: int = Field(description="Rows the figure is a share of.")
    low: float | None = Field(description="Bootstrap interval, low end; null when not meaningful.")
    high: float | None
    meaningful: bool = Field(description="n reaches the policy's fairness_min_group: the interval means something.")


class GroupPublic(BaseModel):
    group: str
    n: int
    accuracy: EstimatePublic
    selection_rate: dict[str, EstimatePublic] = Field(description="Per label: the share of the group given it.")
    true_positive_rate: dict[str, EstimatePublic] = Field(
        description="Per label: of the group's rows of that true label, the share given it."
    )


class GapPublic(BaseModel):
    metric: str = Field(description="demographic_parity (selection rates) or equal_opportunity (true-positive rates)")
    label: str
    value: float = Field(description="Largest rate minus smallest, over the groups with enough rows.")
    low: float | None
    high: float | None
    highest: str
    lowest: str
    groups: int


class FieldPublic(BaseModel):
    field: str
    n: int = Field(description="Rows that have the attribute.")
    min_n: int
    confidence: float
    groups: list[GroupPublic]
    gaps: list[GapPublic]
    largest: GapPublic | None


class VersionFairnessPublic(BaseModel):
    version: int
    created_at: datetime | None
    n: int = Field(description="Labelled answers of this version in the window.")
    first_at: datetime | None
    last_at: datetime | None
    fields: list[FieldPublic] = Field(description="On the labelled feedback the version answered.")
    golden: list[FieldPublic] = Field(
        description="On the golden set, answered by this version; empty when its rows carry none of the fields."
    )
    artifact_removed: bool = Field(
        False,
        description="The retention policy removed its artifact: no golden-set figures (its live-feedback ones stay).",
    )


class FairnessPublic(BaseModel):
    model: str
    fields: list[str]
    window: int = Field(description="Feedback events read (policy fairness_window).")
    labelled: int = Field(description="Of them, logged answers whose true label the feedback names.")
    min_group: int
    confidence: float
    versions: list[VersionFairnessPublic] = Field(description="Newest version first.")
    notes: list[str]
    golden: int = Field(description="Golden-set rows each version answered; 0: its rows carry none of the fields.")

    @classmethod
    def of(cls, report: FairnessReport) -> FairnessPublic:
        data = report.to_dict()
        for version, raw in zip(report.versions, data["versions"], strict=True):
            for part in ("fields", "golden"):
                for f, raw_field in zip(getattr(version, part), raw[part], strict=True):
                    raw_field["largest"] = f.to_dict()["largest"]
        return cls.model_validate(data)
