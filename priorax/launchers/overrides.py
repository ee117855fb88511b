"""Typed `--set name=value` overrides of a dataclass config.

Each value is parsed by the field's annotated type (int, float, bool, str, Optional[...],
Tuple[int, ...]); an unknown field or a value of the wrong type raises `ConfigError` naming both
the value and what was expected.
"""

import dataclasses
import typing
from typing import Any, Dict, Iterable, Mapping


from priorax import core

ConfigError = core.ConfigError

def parse_assignments(assignments: Iterable[str]) -> Dict[str, str]:
  """["a=1", "b=x"] -> {"a": "1", "b": "x"}."""
  result = {}
  for assignment in assignments:
    name, sep, value = assignment.partition("=")
    if not sep or not name:
      raise ConfigError(f"--set {assignment!r} is not of the form name=value")
    result[name.strip()] = value.strip()
  return result


def _parse(text: str, annotation: Any, name: str) -> Any:
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  if origin is typing.Union and type(None) in args:
    if text.lower() in ("none", "null", ""):
      return None
    (inner,) = [a for a in args if a is not type(None)]
    return _parse(text, inner, name)
  if origin is tuple:
    element = args[0]
    parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
    return tuple(_parse(p.strip(), element, name) for p in parts)
  if annotation is bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
      return True
    if lowered in ("false", "0", "no"):
      return False
    raise ConfigError(f"{name}={text!r} is not a bool; expected true or false")
  if annotation in (int, float):
    try:
      value = annotation(text) if annotation is float else int(text.replace("_", ""))
    except ValueError:
      raise ConfigError(f"{name}={text!r} is not {'an int' if annotation is int else 'a float'}"
                        ) from None
    return value
  if annotation is str:
    return text
  raise ConfigError(f"{name} has a type ({annotation}) that cannot be set from the command line")


def apply_overrides(config_class: Any, overrides: Mapping[str, str], base: Mapping[str, Any] = None):
  """Builds `config_class(**base, **parsed overrides)`; its own checks become ConfigErrors."""
  hints = typing.get_type_hints(config_class)
  fields = {f.name for f in dataclasses.fields(config_class)}
  values = dict(base or {})
  for name, text in overrides.items():
    if name not in fields:
      raise ConfigError(f"unknown config field {name!r} for {config_class.__name__}; valid fields: "
                        f"{', '.join(sorted(fields))}")
    values[name] = _parse(text, hints[name], name)
  for name, value in list(values.items()):
    if isinstance(value, list):  # From JSON.
      values[name] = tuple(value)
  try:
    return config_class(**values)
  except (ValueError, TypeError) as e:
    raise ConfigError(str(e)) from None
