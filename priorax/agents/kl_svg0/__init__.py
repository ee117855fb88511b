"""KL-regularised off-policy actor-critic with an SVG(0) policy gradient (`kl_svg0`)."""

from priorax.agents.kl_svg0.builder import KLSVG0Builder
from priorax.agents.kl_svg0.config import KLSVG0Config
from priorax.agents.kl_svg0.learning import KLSVG0Learner
from priorax.agents.kl_svg0.learning import TrainingState
from priorax.agents.kl_svg0.networks import KLSVG0Networks
from priorax.agents.kl_svg0.networks import make_networks
from priorax.agents.kl_svg0.sequence_learning import KLSVG0RetraceLearner
from priorax.agents.kl_svg0.sequence_learning import RetraceTrainingState
