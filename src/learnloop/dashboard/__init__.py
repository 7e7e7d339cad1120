"""The dashboard: server-rendered pages of models, versions, rollouts, feedback and jobs, with
promote and rollback buttons behind the admin key."""

from learnloop.dashboard.routes import build_router

__all__ = ["build_router"]
