"""Distilling experts into students: BC, DAgger, APC, Naive ABC and LFPC (`priorax distill`)."""

from priorax.agents.cloning.builder import CloningBuilder
from priorax.agents.cloning.builder import StudentNetworks
from priorax.agents.cloning.config import CloningConfig
from priorax.agents.cloning.config import METHODS
from priorax.agents.cloning.experts import Expert
from priorax.agents.cloning.experts import load_expert
from priorax.agents.cloning.experts import make_linear_expert
from priorax.agents.cloning.experts import make_scripted_expert
from priorax.agents.cloning.learning import CloningLearner
from priorax.agents.cloning.learning import TrainingState
from priorax.agents.cloning.types import Demonstration
