"""A subject's data (admin): export it, erase it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from learnloop.api.deps import AdminDep, ServicesDep

router = APIRouter(prefix="/v1/subjects", tags=["privacy"])


@router.get("/{subject}/export")
def export_subject(subject: str, actor: AdminDep, services: ServicesDep) -> dict[str, Any]:
    """Everything stored about a subject (as your system names it): predictions and feedback.
    (A plain ``def``: it waits for the prediction log, so it runs in a worker thread.)"""
    return services.privacy.export(subject)


@router.delete("/{subject}")
def erase_subject(subject: str, actor: AdminDep, services: ServicesDep, reason: str | None = None) -> dict[str, Any]:
    """Erase a subject from predictions, feedback and snapshots; mark the versions trained on
    their data and queue retrains without it. Answers what was removed."""
    return services.privacy.erase(
        subject, actor=actor.name, reason=reason or "erasure requested through the API"
    ).to_dict()
