"""The on-disk format of an expert library: the data that NPMP is distilled from.

A library is a directory of single-skill experts on one body (Merel et al. 2019, "Neural
probabilistic motor primitives for humanoid control", §3: many experts, one shared latent space):

  LIBRARY/library.json             the index below
  LIBRARY/<skill>/run/             the expert's run directory (`priorax train` layout), so that
                                   `priorax.agents.cloning.experts.load_expert` gives its mean
                                   action and Jacobian (for LFPC)
  LIBRARY/<skill>/rollouts/        reference trajectories: `episode_*.npz` files in the format of
                                   `priorax.replay.episodes` (observations x_0..x_T, actions, ...)

`library.json` holds `format` (FORMAT), `body` (e.g. "walker"), `observation_keys` (the
proprioceptive keys every skill's environment shares, in order: the reference states and the
decoder's input) and `skills`, one `Skill` each. Paths inside are relative to LIBRARY.
"""

import dataclasses
import json
import os
from typing import List, Optional, Sequence, Tuple

FORMAT = "priorax-expert-library/1"
INDEX = "library.json"


class LibraryError(ValueError):
  """A library directory that is missing, malformed or inconsistent."""


@dataclasses.dataclass(frozen=True)
class Skill:
  """One expert of the library and what it took to make it.

  Attributes:
    name: unique within the library; also its sub-directory.
    environment: the registry name the expert was trained and rolled out on.
    action_repeat: the action repeat of training and rollouts.
    expert: the expert's run directory, relative to the library.
    rollouts: the directory of its reference episodes, relative to the library.
    episodes: number of reference episodes.
    transitions: number of (state, action) pairs in them.
    mean_return: the mean return of those episodes.
    train_env_steps: environment steps the expert was trained for.
    train_cpu_seconds: process CPU time of its training (compute report).
  """
  name: str
  environment: str
  action_repeat: int
  expert: str
  rollouts: str
  episodes: int
  transitions: int
  mean_return: float
  train_env_steps: int
  train_cpu_seconds: float


@dataclasses.dataclass(frozen=True)
class Library:
  """A loaded library index; `path` is the directory it was read from."""
  path: str
  body: str
  observation_keys: Tuple[str, ...]
  skills: Tuple[Skill, ...]

  def skill(self, name: str) -> Skill:
    for skill in self.skills:
      if skill.name == name:
        return skill
    raise LibraryError(f"no skill {name!r} in library {self.path}; skills: "
                       f"{', '.join(s.name for s in self.skills)}")

  def expert_dir(self, skill: Skill) -> str:
    return os.path.join(self.path, skill.expert)

  def rollouts_dir(self, skill: Skill) -> str:
    return os.path.join(self.path, skill.rollouts)


def write_library(path: str, body: str, observation_keys: Sequence[str],
                  skills: Sequence[Skill]) -> Library:
  """Writes (or rewrites) `path/library.json`; the skills' directories must already exist."""
  names = [skill.name for skill in skills]
  if len(set(names)) != len(names):
    raise LibraryError(f"skill names must be unique, got {names}")
  library = Library(path=path, body=body, observation_keys=tuple(observation_keys),
                    skills=tuple(skills))
  _check_directories(library)
  index = {"format": FORMAT, "body": body, "observation_keys": list(observation_keys),
           "skills": [dataclasses.asdict(skill) for skill in skills]}
  temporary = os.path.join(path, INDEX + ".tmp")
  with open(temporary, "w") as f:
    json.dump(index, f, indent=2)
  os.replace(temporary, os.path.join(path, INDEX))  # A crash never leaves a half-written index.
  return library


def load_library(path: str, skills: Optional[Sequence[str]] = None) -> Library:
  """Reads `path/library.json`, optionally keeping only the named skills (in that order)."""
  index_path = os.path.join(path, INDEX)
  if not os.path.isfile(index_path):
    raise LibraryError(f"{path!r} is not an expert library: no {INDEX} in it (build one with "
                       "`priorax library`).")
  with open(index_path) as f:
    index = json.load(f)
  if index.get("format") != FORMAT:
    raise LibraryError(f"{index_path} has format {index.get('format')!r}, expected {FORMAT!r}.")
  fields = {field.name for field in dataclasses.fields(Skill)}
  entries: List[Skill] = []
  for entry in index["skills"]:
    if set(entry) != fields:
      raise LibraryError(f"{index_path}: skill entry {entry.get('name')!r} has fields "
                         f"{sorted(entry)}, expected {sorted(fields)}.")
    entries.append(Skill(**entry))
  library = Library(path=path, body=index["body"],
                    observation_keys=tuple(index["observation_keys"]), skills=tuple(entries))
  if skills is not None:
    library = dataclasses.replace(library, skills=tuple(library.skill(name) for name in skills))
  _check_directories(library)
  return library


def _check_directories(library: Library) -> None:
  for skill in library.skills:
    for directory in (library.expert_dir(skill), library.rollouts_dir(skill)):
      if not os.path.isdir(directory):
        raise LibraryError(f"skill {skill.name!r} of library {library.path}: missing directory "
                           f"{directory}.")
