"""The HTTP application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from learnloop import __version__
from learnloop.api import deps, docs, errors, openapi
from learnloop.api.admission import AdmissionControl
from learnloop.api.audit import AdminAudit
from learnloop.api.cors import add_cors
from learnloop.api.guard import EdgeGuard, list_query_names
from learnloop.api.hosts import HostCheck
from learnloop.api.probes import ProbeServer
from learnloop.api.rate_headers import RateLimitHeaders
from learnloop.api.routes import (
    asking,
    drift,
    explanations,
    fairness,
    families,
    feedback,
    generate,
    generations,
    health,
    jobs,
    keys,
    models,
    openai,
    patterns,
    predictions,
    rollouts,
    studies,
    subjects,
    webhooks,
)
from learnloop.config import Settings
from learnloop.dashboard import build_router as dashboard_router
from learnloop.services import Services, build_services
from learnloop.telemetry import Metrics

logger = logging.getLogger(__name__)

DESCRIPTION = """Serve a model, take feedback, retrain, prove it is better, roll it out.

Every error is `application/problem+json` (RFC 9457) with a stable `code`. Once the server has a
key, every route but `/health` and `/ready` needs one with the route's scope (predict, feedback,
read, label or admin): **Authorize** with it (`X-API-Key` or `Authorization: Bearer`).
ReDoc: [/redoc](/redoc); the document itself: [/openapi.json](/openapi.json)."""


class MetricsMiddleware:
    """Request counts and latencies by route template (pure ASGI: no per-request task)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.request_seconds.labels(method, path).observe(time.perf_counter() - started)


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    start_worker: bool = True,
    freeze_gc: bool = False,
    probe_socket: socket.socket | None = None,
) -> FastAPI:
    """Build the app. With ``services`` given, the caller owns their lifecycle.

    ``freeze_gc`` (for a long-running server): after start-up, move every object alive then
    into the garbage collector's permanent generation. The libraries loaded (SciPy,
    scikit-learn, ...) hold ~170k objects; a full collection over them took ~100 ms and set
    the p99 latency. Frozen, a full collection scans only what requests create.

    ``probe_socket`` (bound and listening): serve ``/health`` and ``/ready`` there from a thread
    of their own while the app runs (``api/probes.py``); the app closes it.
    """
    owned = services is None
    services = services or build_services(settings or Settings.from_env())
    admission = AdmissionControl(services.settings.limits.admission, batches=services.cache.batches)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owned:
            services.start(worker=start_worker)
        loop = asyncio.get_running_loop()
        logger.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
        admission.start(loop)
        probes = None
        if probe_socket is not None:
            probes = ProbeServer(
                probe_socket,
                services,
                admission.lag,
                live_stall_seconds=services.settings.live_stall_seconds,
                ready_stall_seconds=services.settings.ready_stall_seconds,
            )
            probes.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if probes is not None:
                probes.stop()
            admission.stop()
            await services.access.buckets.aclose()  # a Redis client belongs to this event loop
            if owned:
                services.close()  # flushes the prediction log and pending feedback

    app = FastAPI(
        title="learnloop",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        openapi_tags=openapi.TAGS,
        docs_url=None,  # served offline by api/docs.py
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app, credential_first=deps.credential_first)
    openapi.install(app)
    docs.install(app)
    api_modules = (
        predictions,
        generate,
        generations,
        openai,
        feedback,
        models,
        families,
        asking,
        rollouts,
        drift,
        patterns,
        fairness,
        explanations,
        studies,
        subjects,
        jobs,
        health,
        webhooks,
        keys,
    )
    for module in api_modules:
        app.include_router(module.router)
    app.include_router(dashboard_router())  # /dashboard, and / redirects there
    app.add_middleware(AdminAudit, access=services.access)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    # Outermost: a refusal costs no routing, no metrics middleware, no body read.
    app.add_middleware(
        EdgeGuard,
        control=admission,
        limits=services.settings.limits,
        metrics=services.metrics,
        repeatable=list_query_names([route for module in api_modules for route in module.router.routes]),
    )
    # Outside the guard, so that its refusals (413, 503) reach a browser page readable too.
    add_cors(app, services.settings.access.cors_origins)
    # Outermost of all: a request naming another host (DNS rebinding) reaches nothing.
    app.add_middleware(HostCheck, allowed=services.settings.access.allowed_hosts)
    return app
