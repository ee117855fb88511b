"""Haiku building blocks shared by the agents."""

from priorax.networks.distributions import GaussianParams
from priorax.networks.distributions import gaussian_kl
from priorax.networks.distributions import gaussian_log_prob
from priorax.networks.distributions import sample_pre_tanh
from priorax.networks.distributions import tanh_gaussian_log_prob
from priorax.networks.distributions import tanh_log_det_jacobian
from priorax.networks.heads import GaussianHead
from priorax.networks.heads import ScalarHead
from priorax.networks.torsos import LayerNormMLP
from priorax.networks.torsos import concat_observation
from priorax.networks.policies import make_gaussian_policy
