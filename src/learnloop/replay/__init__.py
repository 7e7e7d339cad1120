"""Replay a real labelled stream through the loop with simulated users, and measure it."""

from learnloop.replay.service import ReplayConfig, ReplayObserver, ReplayResult, run_replay
from learnloop.replay.stream import DataFile, Order
from learnloop.replay.users import UserModel

__all__ = ["DataFile", "Order", "ReplayConfig", "ReplayObserver", "ReplayResult", "UserModel", "run_replay"]
