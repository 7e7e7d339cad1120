"""The LLM path's optional dependencies: checked before any of them is imported, so that a
missing one is a clear ``MissingExtraError`` naming the extra, not an ``ImportError`` deep
inside a library. The modules themselves are imported lazily, inside the functions that use
them: importing ``learnloop.families.causal_lm`` never imports torch."""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version

from learnloop.errors import MissingExtraError

LLM_MODULES = ("torch", "transformers", "peft", "safetensors", "tokenizers")
INSTALL_LLM = "pip install 'learnloop[llm]'"


def require_llm_extra(*extra_modules: str) -> None:
    """Raise ``MissingExtraError`` unless torch, transformers, peft (and ``extra_modules``) import."""
    missing = [name for name in (*LLM_MODULES, *extra_modules) if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"the LLM path needs: {INSTALL_LLM} (missing: {', '.join(missing)})", extra="llm")


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of ``names`` (the distributions whose formats an artifact depends on)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
