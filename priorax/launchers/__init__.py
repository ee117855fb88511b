"""Launchers: local (one process, embedded Reverb) and the `priorax` command line."""
