"""Generating text: a request, its result, the handle its caller holds while an engine's
thread works, and the ``Generator`` protocol a served generative version satisfies (an
in-process model: ``families.causal_lm``; answers made elsewhere: ``families.external``).

The handle is fed by the engine's worker thread and read from anywhere: ``result()`` blocks a
plain thread, iterating it yields text deltas (blocking), ``async for`` yields them on an
asyncio loop (the worker hands each delta over with ``loop.call_soon_threadsafe``), ``await
handle.wait()`` gives the result there. ``cancel()`` (a client disconnect) stops the request at
the next step and frees its place.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from learnloop.errors import ValidationError

FinishReason = Literal["stop", "length", "cancelled"]
_END = object()


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: a ``prompt`` (sent as a single user message when the tokenizer has a
    chat template, else as raw text) or chat ``messages``; ``adapter`` None serves the base.
    ``temperature`` 0 is greedy; ``seed`` makes sampling reproducible whatever shares the batch."""

    prompt: str | None = None
    messages: Sequence[Mapping[str, str]] | None = None
    adapter: str | None = None
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValidationError("give exactly one of prompt and messages", field="prompt")
        if self.messages is not None and not self.messages:
            raise ValidationError("messages is empty", field="messages")
        if self.max_new_tokens < 1:
            raise ValidationError("max_new_tokens must be at least 1", field="max_new_tokens")
        if not self.temperature >= 0.0:
            raise ValidationError("temperature must be >= 0", field="temperature")
        if not 0.0 < self.top_p <= 1.0:
            raise ValidationError("top_p must be in (0, 1]", field="top_p")


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    token_ids: tuple[int, ...]


class GenerationHandle:
    """The caller's side of one request (see the module docstring)."""

    def __init__(self, request: GenerationRequest, on_cancel: Callable[[GenerationHandle], None]) -> None:
        self.request = request
        self.submitted = time.monotonic()  # when the engine took it (its time to first token starts here)
        self._on_cancel = on_cancel
        self._cond = threading.Condition()
        self._deltas: list[str] = []
        self._result: GenerationResult | None = None
        self._error: BaseException | None = None
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[object]]] = []
        self.cancel_requested = False

    # -- the caller's side ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        with self._cond:
            return self._result is not None or self._error is not None

    def cancel(self) -> None:
        """Stop generating for this request (at the next step); its result says "cancelled"."""
        self.cancel_requested = True
        self._on_cancel(self)

    def result(self, timeout: float | None = None) -> GenerationResult:
        """Block until the request ends; raise what failed it, or ``TimeoutError``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._result is not None or self._error is not None, timeout):
                raise TimeoutError(f"generation not finished after {timeout} s")
            return self._outcome()

    def __iter__(self) -> Iterator[str]:
        """Text deltas as they come (blocking); raises what failed the request at the end."""
        seen = 0

        def ready() -> bool:
            return len(self._deltas) > seen or self._finished()

        while True:
            with self._cond:
                self._cond.wait_for(ready)
                chunk = self._deltas[seen:]
                seen = len(self._deltas)
                finished = self._finished()
            yield from chunk
            if finished and not chunk:
                break
        with self._cond:
            self._outcome()

    async def __aiter__(self) -> AsyncIterator[str]:
        """Text deltas on the running asyncio loop; raises what failed the request at the end."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        listener = (asyncio.get_running_loop(), queue)
        with self._cond:
            for delta in self._deltas:
                queue.put_nowait(delta)
            if self._finished():
                queue.put_nowait(_END)
            else:
                self._listeners.append(listener)
        try:
            while (item := await queue.get()) is not _END:
                assert isinstance(item, str)
                yield item
        finally:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        with self._cond:
            self._outcome()

    async def wait(self) -> GenerationResult:
        """The result, awaited on the running asyncio loop."""
        async for _ in self:
            pass
        with self._cond:
            return self._outcome()

    # -- the engine's side ---------------------------------------------------------------------

    def _finished(self) -> bool:
        return self._result is not None or self._error is not None

    def _outcome(self) -> GenerationResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _notify(self, item: object) -> None:
        for loop, queue in self._listeners:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # that loop is closed: its reader is gone
                continue

    def push(self, delta: str) -> None:
        if not delta:
            return
        with self._cond:
            self._deltas.append(delta)
            self._cond.notify_all()
            self._notify(delta)

    def finish(self, result: GenerationResult) -> None:
        with self._cond:
            if self._finished():
                return
            self._result = result
            self._cond.notify_all()
            self._notify(_END)

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if self._finished():
                return
            self._error = error
            self._cond.notify_all()
            self._notify(_END)


class Generator(Protocol):
    """A generative version as served: ``submit`` queues a request and returns its handle at
    once (``OverloadedError`` when the queue is full); the work runs elsewhere (an engine's
    thread, never the caller's event loop)."""

    def submit(self, request: GenerationRequest) -> GenerationHandle: ...
