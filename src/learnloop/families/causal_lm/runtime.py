"""Loading a base model for serving and attaching LoRA adapters to it; saving an adapter with
its manifest.

One loaded base serves several adapters (a champion and a challenger) and the base alone: the
first adapter wraps the model in a ``PeftModel`` (load the base, then
``PeftModel.from_pretrained``: the adapter's own record of the base path is never used), later
ones are added to it by name. An adapter's manifest names the family key, its format version,
the library versions, the base it was trained on (name and fingerprint) and a SHA-256 of every
file; attaching refuses a mismatch before loading a byte.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learnloop import __version__
from learnloop.errors import ArtifactError, ConflictError, NotFoundError, ValidationError
from learnloop.families.causal_lm.bases import BaseModelRef
from learnloop.families.causal_lm.extras import library_versions, require_llm_extra
from learnloop.families.lora import ADAPTER_LIBRARIES
from learnloop.families.manifest import MANIFEST, check_libraries, file_hashes, read_manifest, verify_files

ADAPTER_FAMILY = "causal-lm-lora"
ADAPTER_FORMAT = 1
_FINGERPRINT_BYTES = 1 << 20


@dataclass
class LoadedBase:
    """A base in memory, in eval mode: ``model`` is the causal LM (a ``PeftModel`` once an
    adapter is attached), ``adapters`` maps each attached adapter's name to its directory."""

    ref: BaseModelRef
    model: Any
    tokenizer: Any
    threads: int
    fingerprint: str
    adapters: dict[str, Path] = field(default_factory=dict)


def base_fingerprint(path: Path) -> str:
    """A cheap identity of a base directory: its config and, per weight file, its size and
    first megabyte (the safetensors header and the first tensors)."""
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        with weights.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]


def load_base(ref: BaseModelRef, *, threads: int = 1) -> LoadedBase:
    """Model and tokenizer of ``ref`` in fp32 eval mode, torch using ``threads`` threads."""
    if threads < 1:
        raise ValidationError("threads must be at least 1", field="threads")
    require_llm_extra()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a server's log is not a terminal; the CLI shows its own
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(ref.path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(ref.path, dtype=torch.float32)
    model.eval()
    return LoadedBase(
        ref=ref, model=model, tokenizer=tokenizer, threads=threads, fingerprint=base_fingerprint(ref.path)
    )


def adapter_manifest_check(directory: Path, loaded: LoadedBase) -> dict[str, Any]:
    """The adapter's manifest once it is known to fit ``loaded`` (family, format, libraries,
    base, file hashes), else an ``ArtifactError`` naming the mismatch."""
    ref = str(directory)
    manifest = read_manifest(directory, ref)
    if manifest.get("family") != ADAPTER_FAMILY:
        raise ArtifactError(f"artifact {ref} is a {manifest.get('family')!r} artifact, not a {ADAPTER_FAMILY} adapter")
    if manifest.get("format_version") != ADAPTER_FORMAT:
        raise ArtifactError(
            f"adapter {ref} is format {manifest.get('format_version')}; this learnloop reads format {ADAPTER_FORMAT}: "
            "retrain it or install the learnloop that wrote it"
        )
    check_libraries(manifest, library_versions(*ADAPTER_LIBRARIES), ref)
    base = manifest.get("base") or {}
    if base.get("fingerprint") != loaded.fingerprint:
        raise ArtifactError(
            f"adapter {ref} was trained on base {base.get('name')!r} (fingerprint {base.get('fingerprint')}); "
            f"the loaded base is {loaded.ref.name!r} (fingerprint {loaded.fingerprint}): load that base or retrain"
        )
    verify_files(directory, manifest, ref)
    return manifest


def attach_adapter(loaded: LoadedBase, name: str, directory: Path) -> None:
    """Load the LoRA adapter saved in ``directory`` onto ``loaded`` under ``name``. Not while a
    ``GenerationEngine`` is generating on it: attach before starting the engine."""
    if not name or name in loaded.adapters:
        raise ConflictError(f"adapter name {name!r} is empty or already attached to base {loaded.ref.name!r}")
    adapter_manifest_check(directory, loaded)
    require_llm_extra()
    from peft import PeftModel

    with warnings.catch_warnings():
        # peft reads transformers' deprecated ``is_gradient_checkpointing``; nothing of ours calls it
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        if isinstance(loaded.model, PeftModel):
            loaded.model.load_adapter(str(directory), adapter_name=name, is_trainable=False)
        else:
            loaded.model = PeftModel.from_pretrained(
                loaded.model, str(directory), adapter_name=name, is_trainable=False
            )
    loaded.model.eval()
    loaded.adapters[name] = directory


def detach_adapter(loaded: LoadedBase, name: str) -> None:
    """Remove adapter ``name`` from ``loaded``; the last one leaves the plain base. Not while a
    ``GenerationEngine`` is generating on it: use ``GenerationEngine.detach_adapter``."""
    if name not in loaded.adapters:
        raise NotFoundError(f"adapter {name!r} is not attached to base {loaded.ref.name!r}", field="adapter")
    if len(loaded.adapters) == 1:
        loaded.model = loaded.model.unload()
    else:
        if loaded.model.active_adapter == name:
            # PEFT warns when the active adapter is deleted (an error where warnings are, half
            # way through the layers); the engine sets the adapter of each batch anyway.
            loaded.model.set_adapter(next(other for other in loaded.adapters if other != name))
        loaded.model.delete_adapter(name)
    loaded.model.eval()
    del loaded.adapters[name]


def save_adapter(
    model: Any, directory: Path, *, base: LoadedBase | BaseModelRef, adapter_name: str = "default"
) -> Path:
    """Save the LoRA adapter ``adapter_name`` of the ``PeftModel`` ``model`` into the new
    directory ``directory`` with its manifest; return ``directory``."""
    require_llm_extra()
    ref = base.ref if isinstance(base, LoadedBase) else base
    fingerprint = base.fingerprint if isinstance(base, LoadedBase) else base_fingerprint(base.path)
    if directory.exists() and any(directory.iterdir()):
        raise ConflictError(f"adapter directory {directory} exists and is not empty")
    with tempfile.TemporaryDirectory(prefix="learnloop-adapter-") as tmp:
        scratch = Path(tmp)
        model.save_pretrained(str(scratch), selected_adapters=[adapter_name])
        saved = scratch / adapter_name if (scratch / adapter_name).is_dir() else scratch
        directory.mkdir(parents=True, exist_ok=True)
        for path in saved.iterdir():
            if path.is_file():
                shutil.copy2(path, directory / path.name)
    manifest = {
        "family": ADAPTER_FAMILY,
        "format_version": ADAPTER_FORMAT,
        "libraries": library_versions(*ADAPTER_LIBRARIES),
        "learnloop": __version__,
        "base": {"name": ref.name, "kind": ref.kind, "fingerprint": fingerprint},
        "files": file_hashes(directory),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return directory
