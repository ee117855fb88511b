"""Suboptimal experts: scripted controllers that read the simulator (placeholder, filled below)."""

EXPERT_ACTION_KEY = "expert_action"
