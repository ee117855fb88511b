"""The environment registry: `<prefix>:<rest>` names mapped onto environment factories.

Each family of environments (`dmc:` for the dm_control suite; later `loco:`, task families)
registers a factory and a lister under its prefix. `make_environment` looks a name up, builds
the raw environment with its seed and applies the standard wrappers, so every agent sees float32
dict observations and [-1, 1] actions. A bad name fails before anything is built, listing the valid
names with the closest first.
"""

import dataclasses
import difflib
from typing import Callable, Sequence

import dm_env

from priorax.envs import wrappers

# Builds the raw environment for a full name (e.g. "dmc:walker-walk") and seed; raises
# `UnknownEnvironmentError` for a name of its prefix that it does not know.
Factory = Callable[[str, int], dm_env.Environment]
# Lists the full names a factory accepts.
NameLister = Callable[[], Sequence[str]]

_SEPARATOR = ":"
# How many difflib matches are moved to the front of the list of valid names.
_NUM_CLOSE_MATCHES = 5


class UnknownEnvironmentError(ValueError):
  """An environment name whose prefix, domain or task is not registered."""


@dataclasses.dataclass(frozen=True)
class _Family:
  factory: Factory
  list_names: NameLister


_FAMILIES: dict[str, _Family] = {}


def register(prefix: str, factory: Factory, list_names: NameLister) -> None:
  """Registers the family of environments named `<prefix>:...`.

  Args:
    prefix: the family's prefix, without the colon (e.g. "dmc").
    factory: `(name, seed) -> dm_env.Environment` for full names starting with `<prefix>:`.
    list_names: returns every full name `factory` accepts; called only to list or explain names.

  Raises:
    ValueError: `prefix` is empty, contains a colon, or is already registered.
  """
  if not prefix or _SEPARATOR in prefix:
    raise ValueError(
        f"An environment prefix must be non-empty and without {_SEPARATOR!r}: got {prefix!r}."
    )
  if prefix in _FAMILIES:
    raise ValueError(f"Environment prefix {prefix!r} is already registered.")
  _FAMILIES[prefix] = _Family(factory=factory, list_names=list_names)


def list_environments() -> list[str]:
  """Every registered environment name, family by family in registration order."""
  return [name for family in _FAMILIES.values() for name in family.list_names()]


def unknown_environment_error(
    problem: str, name: str, valid_names: Sequence[str]
) -> UnknownEnvironmentError:
  """Builds the error for a bad environment `name`, listing `valid_names` with the closest first.

  Args:
    problem: what is wrong, naming the bad value (e.g. "Unknown dmc domain 'walkr'").
    name: the full name that was asked for.
    valid_names: the names that would have been accepted.
  """
  close = difflib.get_close_matches(name, valid_names, n=_NUM_CLOSE_MATCHES)
  ordered = close + [valid for valid in valid_names if valid not in close]
  return UnknownEnvironmentError(
      f"{problem} in environment name {name!r}. Valid names (closest first): {', '.join(ordered)}."
  )


def make_environment(
    name: str,
    seed: int,
    *,
    action_repeat: int = 1,
    observation_keys: Sequence[str] | None = None,
) -> dm_env.Environment:
  """Builds the named environment, wrapped for agents.

  Wrappers, innermost first: the observation keys kept (if given), scalar observations made shape
  (1,), action repeat, actions canonicalised to [-1, 1], float32 observations, rewards, discounts.

  Args:
    name: `<prefix>:<rest>`, e.g. "dmc:cartpole-swingup"; `list_environments()` lists them all.
    seed: seeds the environment's random number generator (initial states, task randomness).
    action_repeat: how many environment steps each agent action lasts (rewards are summed).
    observation_keys: the observation keys to keep, in this order; all of them if None.

  Raises:
    UnknownEnvironmentError: an unknown prefix, domain or task; the message lists the valid names.
    ValueError: `action_repeat` is not a positive int, or an observation key is unknown.
  """
  wrappers.check_action_repeat(action_repeat)
  prefix, separator, _ = name.partition(_SEPARATOR)
  if not separator or prefix not in _FAMILIES:
    problem = f"Unknown prefix {prefix!r}" if separator else f"Missing '<prefix>{_SEPARATOR}'"
    raise unknown_environment_error(
        f"{problem} (registered prefixes: {', '.join(_FAMILIES)})", name, list_environments()
    )
  environment = _FAMILIES[prefix].factory(name, seed)
  if observation_keys is not None:
    environment = wrappers.ObservationKeysWrapper(environment, observation_keys)
  environment = wrappers.AtLeast1DObservationWrapper(environment)
  if action_repeat > 1:
    environment = wrappers.ActionRepeatWrapper(environment, action_repeat)
  environment = wrappers.CanonicalActionWrapper(environment)
  return wrappers.SinglePrecisionWrapper(environment)
