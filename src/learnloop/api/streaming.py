"""Waiting for a generation at the edge while watching its client: a client that leaves
stops the work done for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import Request

from learnloop.errors import LearnloopError
from learnloop.families.generation import GenerationResult
from learnloop.feedback.generate import Generation, GenerationService

log = logging.getLogger(__name__)

DISCONNECT_POLL_SECONDS = 0.25


async def finished_or_cancelled(request: Request, generation: Generation) -> GenerationResult:
    """The generation's result; cancelled (and then its partial result) when the client
    disconnects while it runs, or when this request's task is cancelled."""
    waiter = asyncio.ensure_future(generation.handle.wait())
    try:
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return waiter.result()
            if await request.is_disconnected():
                generation.cancel()
                return await waiter
    except asyncio.CancelledError:
        generation.cancel()
        waiter.cancel()
        raise


def finish_when_done(service: GenerationService, generation: Generation) -> None:
    """Cancel a generation whose client left and log it once its engine lets go of it (in a
    worker thread: the caller may itself be being cancelled)."""
    generation.cancel()

    def log_it() -> None:
        with contextlib.suppress(LearnloopError, TimeoutError):
            service.finish(generation, generation.handle.result(timeout=30))

    try:
        asyncio.get_running_loop().run_in_executor(None, log_it)
    except RuntimeError:  # no running loop (shutting down): log it here
        log_it()
