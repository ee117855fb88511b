"""Supervised-stream modules (issue 3): Kalman-filter head, soft parameter reset, closed-form last
layer, NEVIS-style stream protocol with offline datasets, structured pruning, dynamic evaluation."""

from priorax.stream.closed_form import ClosedFormConfig
from priorax.stream.closed_form import ClosedFormLastLayer
from priorax.stream.closed_form import ridge_solution
from priorax.stream.dynamic_eval import DynamicEvalConfig
from priorax.stream.dynamic_eval import dynamic_evaluation
from priorax.stream.kalman import KalmanHead
from priorax.stream.kalman import KalmanHeadConfig
from priorax.stream.protocol import FinetuneConfig
from priorax.stream.protocol import FinetuneLearner
from priorax.stream.protocol import Learner
from priorax.stream.protocol import run_stream
from priorax.stream.soft_reset import SoftResetConfig
# The soft-reset wrapper is `priorax.stream.soft_reset.soft_reset`: re-exporting it here would
# shadow the `soft_reset` submodule.
