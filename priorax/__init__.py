"""priorax: JAX reinforcement learning with behaviour priors.

Acme-shaped actors and learners that share a Reverb replay. See DESIGN.md for the map.
"""

__version__ = "0.1.0"
