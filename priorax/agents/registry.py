"""Agent names known to the launchers: name -> (config dataclass, builder class)."""

from typing import Any, Dict, NamedTuple, Type


class AgentEntry(NamedTuple):
  config_class: Type[Any]
  builder_class: Type[Any]


def _agents() -> Dict[str, AgentEntry]:
  # Imported here so that listing agents for an error message stays cheap and cycle-free.
  from priorax.agents import kl_svg0
  from priorax.agents import req
  from priorax.agents import task_inference
  return {"kl_svg0": AgentEntry(kl_svg0.KLSVG0Config, kl_svg0.KLSVG0Builder),
          "req": AgentEntry(req.REQConfig, req.REQBuilder),
          "task_inference": AgentEntry(task_inference.TaskInferenceConfig,
                                       task_inference.TaskInferenceBuilder)}


class UnknownAgentError(ValueError):
  pass


def list_agents():
  return sorted(_agents())


def get_agent(name: str) -> AgentEntry:
  agents = _agents()
  if name not in agents:
    raise UnknownAgentError(f"unknown agent {name!r}; available agents: {', '.join(sorted(agents))}")
  return agents[name]
