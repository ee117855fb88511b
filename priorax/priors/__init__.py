"""Default policies π0 for KL-regularised RL."""

from priorax.priors.base import Prior
from priorax.priors.fixed import make_fixed_prior
from priorax.priors.hierarchical import TransferredPieces
from priorax.priors.hierarchical import load_transferred_pieces
from priorax.priors.hierarchical import make_hierarchical_prior
from priorax.priors.learned import make_learned_prior
from priorax.priors.uniform import make_uniform_prior
