"""learnloop: turn user feedback into better models, automatically and safely.

``from learnloop import Client`` (or ``AsyncClient``) is the Python client of a learnloop
server; it is imported on first use, so ``import learnloop`` itself loads nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from learnloop.client import AsyncClient, Client

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "__version__"]

_LAZY = frozenset({"AsyncClient", "Client"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from learnloop import client

        return getattr(client, name)
    raise AttributeError(f"module 'learnloop' has no attribute {name!r}")
