"""Recurrent cores over (observation, previous action, previous reward), with R2D2-style stored
state and burn-in.

Meta-RL agents condition on the history of observations, actions and rewards (RL², Duan et al.
2016, https://arxiv.org/abs/1611.02779; Humplik et al. 2019, https://arxiv.org/abs/1905.06424):
at step t the core reads (x_t, a_{t−1}, r_{t−1}), with a_{−1} = 0 and r_{−1} = 0 at an episode's
first step, and its state h_t summarises everything before x_t.

Training from replayed sequences follows R2D2 (Kapturowski et al. 2019, "Recurrent experience
replay in distributed reinforcement learning", https://openreview.net/forum?id=r1lyTjAqYX, §3):
  - the actor stores, with every step t, the state h_t it entered step t with, and the previous
    action and reward (`RecurrentExtras`, the `extras` of the SequenceAdder's `Step`);
  - a sequence is replayed from the state stored at its first step, so the learner starts where
    the actor was rather than from zeros;
  - the first `burn_in` steps only refresh that (possibly stale) state under the current
    parameters: their outputs are dropped and no gradient flows through them.
Inside a sequence, the state is reset to zeros at every step with `start_of_episode`, exactly as
the actor resets at `observe_first`, so an online pass and a replayed pass compute the same thing.

Shapes: B batch, T time, A action size, H LSTM size.
"""

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs as dm_specs

from priorax import specs
from priorax.networks import distributions
from priorax.networks import heads
from priorax.networks import torsos
from priorax.replay.types import Step


class CoreInput(NamedTuple):
  """What the core reads at step t: (x_t, a_{t−1}, r_{t−1}); [B, ...] per step, [B, T, ...] per
  sequence (rewards [B] or [B, T] for scalar rewards)."""

  observation: Mapping[str, chex.Array]
  prev_action: chex.Array
  prev_reward: chex.Array


class RecurrentExtras(NamedTuple):
  """What the recurrent actor stores with step t (`Step.extras`): the core state it entered step t
  with, h_t (zeros at an episode's first step), a_{t−1}, r_{t−1}, and what a policy made with
  extras reported about its choice (e.g. the behaviour density an off-policy learner needs; ()
  for a policy without extras)."""

  core_state: hk.LSTMState
  prev_action: np.ndarray
  prev_reward: np.ndarray
  policy_extras: Any = ()


class ObservationActionRewardLSTM(hk.RNNCore):
  """(x_t, a_{t−1}, r_{t−1}) → LayerNormMLP → LSTM: one step maps [B, ...] inputs to [B, H].

  `observation_keys` selects what the core sees (None: every key); leave out `task` so that the
  hidden task stays hidden from the policy.
  """

  def __init__(self, hidden_sizes: Sequence[int], lstm_size: int, *,
               observation_keys: Optional[Sequence[str]] = None, name: Optional[str] = None):
    super().__init__(name=name)
    if lstm_size < 1:
      raise ValueError(f"lstm_size must be >= 1, got {lstm_size}")
    self._torso = torsos.LayerNormMLP(hidden_sizes)
    self._lstm = hk.LSTM(lstm_size)
    self._observation_keys = observation_keys

  def __call__(self, inputs: CoreInput, state: hk.LSTMState) -> tuple[chex.Array, hk.LSTMState]:
    observation = torsos.concat_observation(inputs.observation, self._observation_keys)
    batch = inputs.prev_action.shape[:-1]
    prev_reward = jnp.reshape(inputs.prev_reward, batch + (-1,)).astype(jnp.float32)
    embedding = self._torso(
        jnp.concatenate([observation, inputs.prev_action.astype(jnp.float32), prev_reward], -1))
    return self._lstm(embedding, state)

  def initial_state(self, batch_size: Optional[int]) -> hk.LSTMState:
    return self._lstm.initial_state(batch_size)


@dataclasses.dataclass(frozen=True)
class RecurrentNetwork:
  """A recurrent core with a head on its outputs, as pure functions (Acme's networks-as-data).

  Attributes:
    init: `init(key) -> params`.
    initial_state: `initial_state(batch_size) -> state`, zeros of [batch_size, H] per leaf
      ([H] for None); it needs no parameters.
    step: `step(params, inputs, state) -> (outputs, next_state)` for one step of [B, ...] inputs.
    unroll: `unroll(params, inputs, start_of_episode, state) -> (outputs, final_state)` over
      [B, T, ...] inputs from the [B, ...] state entering step 0; the state is reset to
      `initial_state` before every step whose `start_of_episode` ([B, T] bool) is set.
  """

  init: Callable[[chex.PRNGKey], hk.Params]
  initial_state: Callable[[Optional[int]], hk.LSTMState]
  step: Callable[..., tuple[Any, hk.LSTMState]]
  unroll: Callable[..., tuple[Any, hk.LSTMState]]


def zero_core_input(environment_spec: specs.EnvironmentSpec,
                    batch_shape: tuple[int, ...] = ()) -> CoreInput:
  """Zeros shaped like one core input with leading `batch_shape` (a_{−1} = 0, r_{−1} = 0)."""

  def zeros(spec):
    return np.zeros(batch_shape + tuple(spec.shape), spec.dtype)

  return CoreInput(
      observation=jax.tree_util.tree_map(zeros, environment_spec.observations),
      prev_action=zeros(environment_spec.actions),
      prev_reward=zeros(environment_spec.rewards))


def make_recurrent_network(
    environment_spec: specs.EnvironmentSpec,
    head: Callable[[chex.Array], Any],
    *,
    hidden_sizes: Sequence[int],
    lstm_size: int,
    observation_keys: Optional[Sequence[str]] = None,
) -> RecurrentNetwork:
  """Builds an `ObservationActionRewardLSTM` followed by `head`.

  Args:
    environment_spec: the environment's specs (shapes of the inputs for `init`).
    head: called inside the transform on the core outputs ([B, H] or [B, T, H]), e.g.
      `lambda h: GaussianHead(action_size)(h)`; it must work on any leading axes.
    hidden_sizes: the LayerNormMLP before the LSTM.
    lstm_size: H.
    observation_keys: what the core sees (None: every key).
  """

  def transforms():
    core = ObservationActionRewardLSTM(hidden_sizes, lstm_size, observation_keys=observation_keys)
    resetting = hk.ResetCore(core)

    def step(inputs, state):
      features, state = core(inputs, state)
      return head(features), state

    def unroll(inputs, start_of_episode, state):
      features, state = hk.dynamic_unroll(
          resetting, (inputs, start_of_episode), state, time_major=False)
      return head(features), state

    return unroll, (step, unroll)

  transformed = hk.without_apply_rng(hk.multi_transform(transforms))
  step_apply, unroll_apply = transformed.apply

  def initial_state(batch_size: Optional[int]) -> hk.LSTMState:
    shape = (lstm_size,) if batch_size is None else (batch_size, lstm_size)
    return hk.LSTMState(hidden=jnp.zeros(shape), cell=jnp.zeros(shape))

  def init(key: chex.PRNGKey) -> hk.Params:
    inputs = zero_core_input(environment_spec, (1, 1))
    return transformed.init(key, inputs, np.ones((1, 1), bool), initial_state(1))

  return RecurrentNetwork(init=init, initial_state=initial_state, step=step_apply,
                          unroll=unroll_apply)


def make_recurrent_gaussian_policy(
    environment_spec: specs.EnvironmentSpec,
    *,
    hidden_sizes: Sequence[int],
    lstm_size: int,
    observation_keys: Optional[Sequence[str]] = None,
    min_scale: float = 1e-3,
) -> RecurrentNetwork:
  """A recurrent tanh-Gaussian policy: outputs are pre-tanh `GaussianParams` ([B, A] or [B, T, A])."""
  action_size = int(np.prod(environment_spec.actions.shape))
  return make_recurrent_network(
      environment_spec, lambda h: heads.GaussianHead(action_size, min_scale=min_scale)(h),
      hidden_sizes=hidden_sizes, lstm_size=lstm_size, observation_keys=observation_keys)


def make_tanh_gaussian_policy(network: RecurrentNetwork, evaluation: bool):
  """`policy(params, key, inputs, state) -> (action, next_state)` for one unbatched step of a
  `make_recurrent_gaussian_policy` network: a = tanh(u), u ~ N(μ, σ²) (u = μ when evaluating)."""

  def policy(params, key, inputs: CoreInput, state: hk.LSTMState):
    batched_inputs, batched_state = jax.tree_util.tree_map(
        lambda x: jnp.expand_dims(x, 0), (inputs, state))
    gaussian, next_state = network.step(params, batched_inputs, batched_state)
    u = gaussian.mean if evaluation else distributions.sample_pre_tanh(gaussian, key)
    return jnp.tanh(u[0]), jax.tree_util.tree_map(lambda x: x[0], next_state)

  return policy


def core_inputs_from_steps(steps: Step) -> CoreInput:
  """The core inputs (x_t, a_{t−1}, r_{t−1}) of replayed [B, T] sequences of `Step`s.

  Inside the sequence a_{t−1}, r_{t−1} are the previous step's action and reward, zeroed at an
  episode start; at t = 0 they are the ones the actor stored (`RecurrentExtras`). Shifting rather
  than reading every step's extras also gets the final observation x_T right: its step has zero
  extras, but a_{T−1}, r_{T−1} are the step before it.
  """
  extras = steps.extras
  starts = steps.start_of_episode

  def shifted(stored_first, values):
    previous = jnp.concatenate([stored_first[:, :1], values[:, :-1]], axis=1)
    start = jnp.reshape(starts, starts.shape + (1,) * (previous.ndim - starts.ndim))
    return jnp.where(start, jnp.zeros_like(previous), previous)

  return CoreInput(
      observation=steps.observation,
      prev_action=shifted(extras.prev_action, steps.action),
      prev_reward=shifted(extras.prev_reward, steps.reward))


def stored_core_state(steps: Step, like: hk.LSTMState) -> hk.LSTMState:
  """The core state the actor stored at the first step of [B, T] sequences, as [B, H] leaves.

  Reverb rebuilds namedtuples under new classes; the state is restored to the structure of `like`
  (e.g. `network.initial_state(1)`) so it can be carried through `unroll`.
  """
  first = [leaf[:, 0] for leaf in jax.tree_util.tree_leaves(steps.extras.core_state)]
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), first)


def split_burn_in(sequence: Any, burn_in: int) -> tuple[Any, Any]:
  """Splits every [B, T, ...] leaf at time `burn_in`: ([B, burn_in, ...], [B, T − burn_in, ...])."""
  return (jax.tree_util.tree_map(lambda x: x[:, :burn_in], sequence),
          jax.tree_util.tree_map(lambda x: x[:, burn_in:], sequence))


def unroll_with_burn_in(
    network: RecurrentNetwork,
    params: hk.Params,
    inputs: CoreInput,
    start_of_episode: chex.Array,
    state: hk.LSTMState,
    burn_in: int,
) -> tuple[Any, hk.LSTMState]:
  """Unrolls [B, T] sequences from their stored state, burning in the first `burn_in` steps.

  R2D2 (Kapturowski et al. 2019, §3, "burn-in"): steps 0 … burn_in − 1 are unrolled only to
  refresh the stored state under the current parameters; the state they reach is a constant
  (stop-gradient) start for steps burn_in … T − 1, whose outputs are returned. With unchanged
  parameters, the outputs equal those of an unroll over all T steps.

  Args:
    network: the recurrent network.
    params: its parameters.
    inputs: [B, T, ...] core inputs (`core_inputs_from_steps`).
    start_of_episode: [B, T] bool; the state is reset before such steps, burn-in included.
    state: the [B, ...] state entering step 0 (`stored_core_state`).
    burn_in: 0 ≤ burn_in < T.

  Returns:
    (outputs for steps burn_in … T − 1, [B, T − burn_in, ...]; the state entering step burn_in).
    Slice the rest of the batch with `split_burn_in` to line it up with the outputs.
  """
  length = start_of_episode.shape[1]
  if not 0 <= burn_in < length:
    raise ValueError(f"burn_in must be in [0, sequence length {length}), got {burn_in}.")
  if burn_in:
    burn_inputs, inputs = split_burn_in(inputs, burn_in)
    burn_starts, start_of_episode = split_burn_in(start_of_episode, burn_in)
    _, state = network.unroll(params, burn_inputs, burn_starts, state)
    state = jax.lax.stop_gradient(state)
  outputs, _ = network.unroll(params, inputs, start_of_episode, state)
  return outputs, state


def recurrent_extras_spec(environment_spec: specs.EnvironmentSpec, lstm_size: int,
                          policy_extras_spec: Any = ()) -> RecurrentExtras:
  """Specs of the `RecurrentExtras` of one step (for `SequenceAdder.signature`'s extras_spec);
  `policy_extras_spec` is the spec of the policy's own extras, if it has any."""
  state = dm_specs.Array((lstm_size,), np.float32)
  return RecurrentExtras(
      core_state=hk.LSTMState(hidden=state, cell=state),
      prev_action=environment_spec.actions,
      prev_reward=environment_spec.rewards,
      policy_extras=policy_extras_spec)
