"""``GenerationEngine``: every forward pass of one loaded base runs on one worker thread.

Callers ``submit`` a ``GenerationRequest`` and get a ``GenerationHandle`` at once. Requests
wait in a bounded queue; when it is full, ``OverloadedError`` carries a Retry-After estimated
from the engine's state (``retry_after_seconds``: the requests waiting, the recent seconds per
request, the batch size). The worker
takes the oldest request and, for ``batch_wait_ms``, the requests that arrive behind it for the
same adapter (up to ``max_batch``): they share each forward pass (left padding, one KV cache).
While a batch runs, newcomers for its adapter join it at step boundaries (continuous batching)
as long as the oldest waiting request is theirs; a request for another adapter waits for the
batch to drain, so no adapter starves. Finished and cancelled rows leave the batch at once.

Adapters are attached and detached on the worker thread between batches. A detach waits for
the requests already queued for that adapter (a rollback switches the route first, so a
request that picked the old route just before still gets its answer); requests submitted
after it fail with ``NotFoundError``.

``close`` stops the thread: waiting requests and rows still generating fail with
``ModelUnavailableError``.

The engine counts what it does in ``telemetry.GenerationMetrics`` (labelled by its base's name):
requests admitted and refused, queue depth, running rows and adapters (read when scraped), rows
per forward pass, tokens, time to first token and seconds generating.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from learnloop.errors import ModelUnavailableError, NotFoundError, OverloadedError, ValidationError
from learnloop.families.causal_lm.batch import DecodeState, Row, choose_tokens
from learnloop.families.causal_lm.detokenize import IncrementalDetokenizer
from learnloop.families.causal_lm.runtime import LoadedBase, attach_adapter, detach_adapter
from learnloop.families.generation import FinishReason, GenerationHandle, GenerationRequest, GenerationResult
from learnloop.telemetry import GenerationMetrics

log = logging.getLogger(__name__)

RETRY_AFTER_BOUNDS = (1, 60)  # seconds: a full queue's Retry-After stays within these
RECENT_WEIGHT = 0.2  # the newest request's weight in the recent mean seconds per request


def retry_after_seconds(ahead: int, seconds_per_request: float | None, max_batch: int) -> int:
    """How long a refused request should wait: the time the engine needs to run the ``ahead``
    requests waiting, ``max_batch`` at a time at ``seconds_per_request`` each, rounded up and
    kept within ``RETRY_AFTER_BOUNDS`` (the lower bound while nothing has been measured yet)."""
    low, high = RETRY_AFTER_BOUNDS
    if seconds_per_request is None:
        return low
    return min(high, max(low, math.ceil(ahead * seconds_per_request / max_batch)))


class GenerationEngine:
    """One worker thread serving ``loaded`` (and its adapters); see the module docstring."""

    def __init__(
        self,
        loaded: LoadedBase,
        *,
        max_batch: int = 8,
        batch_wait_ms: float = 5.0,
        max_queue: int = 64,
        metrics: GenerationMetrics | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or batch_wait_ms < 0:
            raise ValidationError("max_batch and max_queue must be >= 1 and batch_wait_ms >= 0")
        self.loaded = loaded
        self.max_batch = max_batch
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_queue = max_queue
        self._seconds_per_request: float | None = None  # recent mean, from the prefill to the last token
        self._eos = _eos_ids(loaded)
        self._cond = threading.Condition()
        self._waiting: deque[GenerationHandle] = deque()
        self._closed = False
        self._active = 0
        # changes to run between batches: (task, its future, the adapter whose queued requests go first)
        self._control: deque[tuple[Callable[[], None], Future[None], str | None]] = deque()
        self._bind_metrics(metrics or GenerationMetrics(CollectorRegistry()))
        self._thread = threading.Thread(target=self._work, name=f"learnloop-generate-{loaded.ref.name}", daemon=True)
        self._thread.start()

    def _bind_metrics(self, metrics: GenerationMetrics) -> None:
        base = self.loaded.ref.name
        self._metrics = metrics
        self._outcomes = {
            outcome: metrics.requests.labels(base, outcome)
            for outcome in ("admitted", "full", "closed", "unknown_adapter")
        }
        self._batch_rows = metrics.batch_rows.labels(base)
        self._prompt_tokens = metrics.tokens.labels(base, "prompt")
        self._completion_tokens = metrics.tokens.labels(base, "completion")
        self._first_token = metrics.first_token_seconds.labels(base)
        self._seconds = metrics.seconds.labels(base)
        metrics.queued.labels(base).set_function(lambda: len(self._waiting))
        metrics.running.labels(base).set_function(lambda: self._active)
        metrics.adapters.labels(base).set_function(lambda: len(self.loaded.adapters))

    # -- callers -------------------------------------------------------------------------------

    @property
    def seconds_per_request(self) -> float | None:
        """The recent mean time a request spends generating (None before the first finishes)."""
        return self._seconds_per_request

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        """Queue ``request``; raise ``OverloadedError`` when the queue is full, with a
        Retry-After from ``retry_after_seconds``."""
        if request.adapter is not None and request.adapter not in self.loaded.adapters:
            self._outcomes["unknown_adapter"].inc()
            raise NotFoundError(
                f"adapter {request.adapter!r} is not loaded on base {self.loaded.ref.name!r} "
                f"(loaded: {', '.join(sorted(self.loaded.adapters)) or 'none'})",
                field="adapter",
            )
        handle = GenerationHandle(request, self._cancel_waiting)
        with self._cond:
            if self._closed:
                self._outcomes["closed"].inc()
                raise ModelUnavailableError(f"the generation engine of base {self.loaded.ref.name!r} is closed")
            if len(self._waiting) >= self.max_queue:
                self._outcomes["full"].inc()
                retry = retry_after_seconds(len(self._waiting), self._seconds_per_request, self.max_batch)
                raise OverloadedError(
                    f"generation queue of base {self.loaded.ref.name!r} is full ({self.max_queue} waiting); "
                    f"retry after {retry} s",
                    retry_after=retry,
                )
            self._waiting.append(handle)
            self._cond.notify_all()
        self._outcomes["admitted"].inc()
        return handle

    def attach_adapter(self, name: str, directory: Path, timeout: float | None = None) -> None:
        """Attach the adapter saved in ``directory`` as ``name``, on the worker thread between
        batches (the running batch finishes first; waiting requests do not join it meanwhile)."""
        self._on_worker(lambda: attach_adapter(self.loaded, name, directory), timeout)

    def detach_adapter(self, name: str, timeout: float | None = None) -> None:
        """Remove adapter ``name`` between batches, once the requests queued for it have run;
        requests naming it after that fail."""
        self._on_worker(lambda: detach_adapter(self.loaded, name), timeout, after=name)

    def _on_worker(self, task: Callable[[], None], timeout: float | None, after: str | None = None) -> None:
        future: Future[None] = Future()
        with self._cond:
            if self._closed:
                raise ModelUnavailableError(f"the generation engine of base {self.loaded.ref.name!r} is closed")
            self._control.append((task, future, after))
            self._cond.notify_all()
        future.result(timeout)

    def _ready_control(self) -> bool:
        """Whether the next change can run now: it does not wait for queued requests of its
        adapter (called holding the lock). Changes run in the order they were asked for."""
        if not self._control:
            return False
        after = self._control[0][2]
        return after is None or all(h.request.adapter != after for h in self._waiting)

    def _run_control(self) -> None:
        """Run the changes that are ready, in order; a detach whose adapter still has queued
        requests waits (with the changes behind it) for a later turn."""
        while True:
            with self._cond:
                if not self._ready_control():
                    return
                task, future, _ = self._control.popleft()
            try:
                task()
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    @property
    def active(self) -> int:
        """Rows in the running batch."""
        return self._active

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker thread; fail what is waiting or generating. Idempotent."""
        with self._cond:
            self._closed = True
            pending = list(self._waiting)
            self._waiting.clear()
            control = list(self._control)
            self._control.clear()
            self._cond.notify_all()
        for _, future, _ in control:
            future.set_exception(self._closed_error("before this change ran"))
        for handle in pending:
            handle.fail(self._closed_error("before this request ran"))
        self._thread.join(timeout)
        for gauge in (self._metrics.queued, self._metrics.running, self._metrics.adapters):
            with contextlib.suppress(KeyError):  # closed before
                gauge.remove(self.loaded.ref.name)  # its reading holds the engine: let both go

    def __enter__(self) -> GenerationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _closed_error(self, when: str) -> ModelUnavailableError:
        return ModelUnavailableError(f"the generation engine of base {self.loaded.ref.name!r} closed {when}")

    def _cancel_waiting(self, handle: GenerationHandle) -> None:
        with self._cond:
            try:
                self._waiting.remove(handle)
            except ValueError:
                return  # running (the worker sees the flag at its next step) or finished
        handle.finish(GenerationResult("", "cancelled", 0, 0, ()))

    # -- the worker thread ---------------------------------------------------------------------

    def _take(self, adapter: str | None, limit: int) -> list[GenerationHandle]:
        """Up to ``limit`` waiting requests for ``adapter``, oldest first, provided the oldest
        waiting request is one of them: a request for another adapter at the head of the queue
        stops newcomers from joining the running batch, so it runs next (called holding the lock)."""
        if not self._waiting or self._waiting[0].request.adapter != adapter:
            return []
        taken = [h for h in self._waiting if h.request.adapter == adapter][:limit]
        for handle in taken:
            self._waiting.remove(handle)
        return taken

    def _next_batch(self) -> list[GenerationHandle] | None:
        """The next batch to start (empty when its requests were cancelled while it gathered),
        or None once the engine is closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._waiting or self._closed or self._control)
            if self._closed:
                return None
            if self._ready_control():
                return []
            adapter = self._waiting[0].request.adapter
            self._cond.wait_for(
                lambda: (
                    self._closed
                    or not self._waiting
                    or sum(1 for h in self._waiting if h.request.adapter == adapter) >= self.max_batch
                ),
                self.batch_wait,
            )
            if self._closed:
                return None
            if not self._waiting:
                return []
            return self._take(self._waiting[0].request.adapter, self.max_batch)

    def _work(self) -> None:
        import torch

        torch.set_num_threads(self.loaded.threads)
        with torch.inference_mode():
            while (batch := self._next_batch()) is not None:
                if not batch:  # a change is ready (or the batch was cancelled): run changes between batches
                    self._run_control()
                    continue
                state = DecodeState(self.loaded.model, int(self.loaded.tokenizer.pad_token_id))
                try:
                    self._run(state, batch)
                except Exception as exc:
                    log.exception("generation failed on base %s", self.loaded.ref.name)
                    for handle in [*batch, *(row.handle for row in state.rows)]:
                        handle.fail(exc)  # a no-op for those already finished
                finally:
                    self._active = 0
        log.debug("generation worker of base %s stopped", self.loaded.ref.name)

    @contextlib.contextmanager
    def _adapter(self, name: str | None) -> Iterator[None]:
        model = self.loaded.model
        if not self.loaded.adapters:
            yield
        elif name is None:
            with model.disable_adapter():
                yield
        else:
            model.set_adapter(name)
            yield

    def _run(self, state: DecodeState, first: list[GenerationHandle]) -> None:
        adapter = first[0].request.adapter
        if adapter is not None and adapter not in self.loaded.adapters:
            for handle in first:
                handle.fail(NotFoundError(f"adapter {adapter!r} was detached before this request ran", field="adapter"))
            return
        with self._adapter(adapter):
            self._admit(state, first)
            while state.rows:
                if self._closed:
                    for row in state.rows:
                        row.handle.fail(self._closed_error("while this request was generating"))
                    return
                if len(state.rows) < self.max_batch and state.mergeable:
                    with self._cond:
                        ready = self._ready_control()  # a change waits for this batch only
                        newcomers = [] if ready else self._take(adapter, self.max_batch - len(state.rows))
                    if newcomers:
                        self._admit(state, newcomers)
                assert state.logits is not None
                self._batch_rows.observe(len(state.rows))
                tokens = choose_tokens(state.logits, state.rows)
                keep = [
                    i
                    for i, (row, token) in enumerate(zip(state.rows, tokens, strict=True))
                    if self._advance(row, token)
                ]
                self._active = len(keep)
                if not keep:
                    return
                state.keep(keep)
                state.step([tokens[i] for i in keep])

    def _admit(self, state: DecodeState, handles: list[GenerationHandle]) -> None:
        rows = []
        for handle in handles:
            try:
                prompt_ids = self._encode(handle.request)
            except Exception as exc:
                handle.fail(exc)
                continue
            seed = handle.request.seed if handle.request.seed is not None else secrets.randbits(63)
            generator = None
            if handle.request.temperature > 0:
                import torch

                generator = torch.Generator().manual_seed(seed)
            rows.append(Row(handle, prompt_ids, generator, IncrementalDetokenizer(self.loaded.tokenizer)))
        if rows:
            try:
                state.admit(rows)
            except Exception as exc:  # these rows only: the running ones go on
                log.exception("prefill failed on base %s", self.loaded.ref.name)
                for row in rows:
                    row.handle.fail(exc)
        self._active = len(state.rows)

    def _advance(self, row: Row, token: int) -> bool:
        """Give ``row`` its next token; finish it when it ends. True while it goes on."""
        reason: FinishReason | None = None
        if row.handle.cancel_requested:
            reason = "cancelled"
        else:
            if not row.tokens:
                self._first_token.observe(time.monotonic() - row.handle.submitted)
            row.tokens.append(token)
            if token in self._eos:
                reason = "stop"
            else:
                row.handle.push(row.detokenizer.add(token))
                if len(row.tokens) >= row.handle.request.max_new_tokens:
                    reason = "length"
        if reason is None:
            return True
        row.handle.push(row.detokenizer.flush())
        row.handle.finish(
            GenerationResult(row.detokenizer.text, reason, len(row.prompt_ids), len(row.tokens), tuple(row.tokens))
        )
        self._finished(row)
        return False

    def _finished(self, row: Row) -> None:
        """Count a finished row, and fold its seconds into the recent mean."""
        seconds = time.monotonic() - row.started
        self._seconds.observe(seconds)
        self._prompt_tokens.inc(len(row.prompt_ids))
        self._completion_tokens.inc(len(row.tokens))
        recent = self._seconds_per_request
        self._seconds_per_request = seconds if recent is None else recent + RECENT_WEIGHT * (seconds - recent)

    def _encode(self, request: GenerationRequest) -> list[int]:
        tokenizer = self.loaded.tokenizer
        if tokenizer.chat_template:
            messages = list(request.messages or [{"role": "user", "content": request.prompt or ""}])
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        elif request.messages is not None:
            raise ValidationError(
                f"base {self.loaded.ref.name!r} has no chat template: send a prompt, not messages", field="messages"
            )
        else:
            ids = tokenizer(request.prompt)["input_ids"]
        if not ids:
            raise ValidationError("the prompt is empty", field="prompt")
        return ids


def _eos_ids(loaded: LoadedBase) -> frozenset[int]:
    found: set[int] = set()
    configured: Any = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    for value in (configured, loaded.tokenizer.eos_token_id):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, int))
    return frozenset(found)
