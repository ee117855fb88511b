"""Expert libraries: sets of single-skill experts and their reference rollouts."""

from priorax.experts.library import FORMAT
from priorax.experts.library import Library
from priorax.experts.library import LibraryError
from priorax.experts.library import load_library
from priorax.experts.library import Skill
from priorax.experts.library import write_library
