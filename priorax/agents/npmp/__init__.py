"""Neural probabilistic motor primitives (Merel et al. 2019), distilled from an expert library."""

from priorax.agents.npmp.acting import load_npmp
from priorax.agents.npmp.acting import LowLevelWrapper
from priorax.agents.npmp.acting import SavedNPMP
from priorax.agents.npmp.config import NPMPConfig
from priorax.agents.npmp.learning import NPMPLearner
from priorax.agents.npmp.losses import npmp_loss
from priorax.agents.npmp.networks import make_networks
from priorax.agents.npmp.networks import NPMPNetworks
