"""The report of what each retrain cost and what it bought (``GET /v1/models/{m}/retrains/value``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class TrainingCostPublic(BaseModel):
    wall_seconds: float
    cpu_seconds: float = Field(
        description="User + system CPU time: of the training process (scope 'process') or of the thread "
        "that ran the fit in a shared process (scope 'thread')."
    )
    peak_rss_bytes: int = Field(description="Resident-set high-water mark of that process during the fit.")
    scope: str
    memory_measure: str = Field(description="'vmhwm' (reset at the fit's start) or 'maxrss' (lifetime peak).")
    gpu_seconds: float | None = Field(description="Wall seconds times GPUs the fit used; null: no GPU.")
    gpu_peak_bytes: int | None


class OnlineGainPublic(BaseModel):
    measure: str = Field(description="'accuracy' (classification) or 'rating' (generation).")
    unit: str
    before_version: int
    before_n: int
    before_mean: float | None
    after_n: int
    after_mean: float | None
    served: int = Field(description="Answers the new version gave as champion.")
    claimed: bool = Field(description="Enough judged answers on both sides (policy.value_min_judged).")
    reason: str
    delta: float | None
    delta_ci: tuple[float, float] | None = Field(description="95% bootstrap interval of the change.")
    gain: float | None = Field(description="The change times the answers served, in ``unit``.")
    gain_ci: tuple[float, float] | None


class RetrainValuePublic(BaseModel):
    version: int
    status: str
    created_at: datetime
    promoted_at: datetime | None
    cost: TrainingCostPublic | None = Field(description="Null: the version was not made by a measured fit.")
    gain: OnlineGainPublic | None
    verdict: str = Field(description="gain, loss, no change shown, not promoted, too few answers, or first version.")
    bought_nothing: bool
    cost_money: float
    value_money: float | None
    value_money_ci: tuple[float, float] | None
    return_money: float | None


class RetrainValueReport(BaseModel):
    """What each retrain cost (CPU, wall, memory, GPU) and bought (the change in the online measure
    after its promotion times the traffic it served), at the model's prices (``policy.value``)."""

    model: str
    measure: str
    unit: str
    priced: bool
    prices: dict[str, float]
    retrains: list[RetrainValuePublic]
    totals: dict[str, Any]
