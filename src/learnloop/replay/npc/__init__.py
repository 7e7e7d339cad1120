"""The generative demo: an innkeeper NPC learns its players' hidden taste through the loop."""

from learnloop.replay.npc.run import NpcDemoConfig, NpcDemoResult, NpcObserver, run_npc_demo
from learnloop.replay.npc.taste import Taste

__all__ = ["NpcDemoConfig", "NpcDemoResult", "NpcObserver", "Taste", "run_npc_demo"]
