"""Loggers, counters, checkpointing, plotting and video."""
