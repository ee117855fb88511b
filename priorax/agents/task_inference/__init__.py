"""Meta-RL as task inference (Humplik et al. 2019; METHODS §7): rl2, rl2_aux, task_inference and
oracle variants of one recurrent Retrace/SVG(0) agent."""

from priorax.agents.task_inference.builder import TaskInferenceBuilder
from priorax.agents.task_inference.config import TaskInferenceConfig
from priorax.agents.task_inference.config import VARIANTS
