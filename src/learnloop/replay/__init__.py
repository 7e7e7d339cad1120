"""Replay a real labelled stream through the loop with simulated users, and measure it.

The names below load on first use: ``learnloop --help`` imports this package's light modules
(``stream`` for ``Order``, ``drivers`` for ``MODES``), and must not load the loop with them
(the services, the families, numpy)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from learnloop.replay.service import ReplayConfig, ReplayObserver, ReplayResult, run_replay
    from learnloop.replay.stream import DataFile, Order
    from learnloop.replay.users import UserModel

_MODULE_OF = {
    "DataFile": "stream",
    "Order": "stream",
    "ReplayConfig": "service",
    "ReplayObserver": "service",
    "ReplayResult": "service",
    "UserModel": "users",
    "run_replay": "service",
}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"learnloop.replay.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'learnloop.replay' has no attribute {name!r}")


__all__ = ["DataFile", "Order", "ReplayConfig", "ReplayObserver", "ReplayResult", "UserModel", "run_replay"]
