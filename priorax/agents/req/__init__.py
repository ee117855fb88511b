"""REQ, Relative Entropy Q-learning with suboptimal experts (`req`, Jeong et al. 2020)."""

from priorax.agents.req.builder import REQBuilder
from priorax.agents.req.config import manipulation_config
from priorax.agents.req.config import REQConfig
from priorax.agents.req.learning import PolicyParams
from priorax.agents.req.learning import REQLearner
from priorax.agents.req.learning import TrainingState
from priorax.agents.req.networks import make_networks
from priorax.agents.req.networks import REQNetworks
