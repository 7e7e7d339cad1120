"""Base models: a known name (a GGUF shipped by an installed package) or a local Hugging Face
causal-LM directory.

A GGUF base is converted once into ``bases_dir/<name>-<content hash>/`` (fp32 safetensors and
the tokenizer): the conversion is written to a temporary sibling directory and renamed into
place, so a process never sees half a copy and two processes converting at once both end with
the same complete copy. Later loads read the copy (a fraction of a second, against ~20 s for a
GGUF load). The conversion runs in a child process (``convert_gguf_in_child``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import multiprocessing
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from learnloop.errors import ArtifactError, ValidationError
from learnloop.families.causal_lm.extras import require_llm_extra
from learnloop.families.lora import KNOWN_BASES, GgufBase

log = logging.getLogger(__name__)

BaseKind = Literal["gguf", "local"]
SOURCE_FILE = "learnloop-base.json"


@dataclass(frozen=True)
class BaseModelRef:
    """A resolved base: ``path`` is a Hugging Face directory ``from_pretrained`` reads;
    ``source`` is where it came from (the GGUF file, or the directory itself)."""

    name: str
    path: Path
    kind: BaseKind
    source: str


def resolve_base(spec: str, bases_dir: Path) -> BaseModelRef:
    """``spec`` is a known base name (``smollm2-135m-instruct``) or a local model directory."""
    known = KNOWN_BASES.get(spec)
    if known is not None:
        return _resolve_gguf(spec, known, bases_dir)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValidationError(f"base directory {spec} has no config.json: not a Hugging Face model", field="base")
        return BaseModelRef(name=path.resolve().name, path=path.resolve(), kind="local", source=str(path.resolve()))
    raise ValidationError(
        f"unknown base {spec!r}: give one of {', '.join(sorted(KNOWN_BASES))} or a local Hugging Face "
        "causal-LM directory",
        field="base",
    )


def gguf_file(known: GgufBase) -> Path:
    """The GGUF file inside its package, found without importing the package."""
    spec = importlib.util.find_spec(known.package)
    if spec is None or not spec.submodule_search_locations:
        raise ValidationError(f"the base needs the package {known.package}: {known.install}", field="base")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / known.filename
        if candidate.is_file():
            return candidate
    raise ValidationError(
        f"package {known.package} is installed but has no {known.filename}: reinstall it ({known.install})",
        field="base",
    )


def _short_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _resolve_gguf(name: str, known: GgufBase, bases_dir: Path) -> BaseModelRef:
    source = gguf_file(known)
    target = bases_dir.resolve() / f"{name}-{_short_hash(source)}"
    if not (target / SOURCE_FILE).is_file():
        convert_gguf_in_child(source, target)
    return BaseModelRef(name=name, path=target, kind="gguf", source=str(source))


def convert_gguf_in_child(source: Path, target: Path) -> None:
    """``convert_gguf`` in a child process of its own, waited for. The conversion holds the
    GIL for most of its ~20 s and a dequantized copy of the weights beside the GGUF reader's;
    in the caller (a server's engine thread, a training process) the event loop would wait and
    the process would keep the peak's memory after it. A child returns it to the system."""
    require_llm_extra("gguf")  # a missing extra is the caller's clear error, not the child's
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            pool.submit(convert_gguf, source, target).result()
        except BrokenProcessPool as exc:
            raise ArtifactError(
                f"converting the GGUF base {source} failed: the conversion process died (out of memory?)"
            ) from exc
        except Exception as exc:  # raised in the child, pickled back: say what was being done
            raise ArtifactError(f"converting the GGUF base {source} failed: {exc}") from exc


def convert_gguf(source: Path, target: Path) -> None:
    """Dequantize the GGUF at ``source`` into a safetensors + tokenizer directory at ``target``
    (atomically: built beside it, then renamed)."""
    require_llm_extra("gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the CLI shows its own; a server logs
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    log.info("converting GGUF base %s into %s", source, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model: Any = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
        # The weights are dequantized to fp32 already; the GGUF marker only blocks saving them.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        (scratch / SOURCE_FILE).write_text(json.dumps({"gguf": source.name, "sha256_prefix": target.name[-12:]}))
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / SOURCE_FILE).is_file():
                raise
            log.info("another process converted %s first; keeping its copy", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
