"""PPO's trained pair: `actor` (a causal LM) and `critic` (a value-head model), any two sizes.

It is a model like the others so that checkpoints, loading and sharding treat it as one tree
(`actor.*`, `critic.*`); PPO itself lives in `xy_jax.rl`.
"""

from __future__ import annotations

from flax import nnx

from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import ModelConfig
from xy_jax.models.reward import RewardModel


class ActorCritic(nnx.Module):

  def __init__(self, actor_cfg: ModelConfig, critic_cfg: ModelConfig, rngs: nnx.Rngs, sharding):
    self.actor = CausalLM(actor_cfg, rngs, sharding)
    self.critic = RewardModel(critic_cfg, rngs, sharding)


def actor_critic_class(critic_cfg: ModelConfig):
  """A model class in the factory's `(cfg, rngs, sharding)` form: `cfg` is the actor's."""

  def make(actor_cfg: ModelConfig, rngs: nnx.Rngs, sharding) -> ActorCritic:
    return ActorCritic(actor_cfg, critic_cfg, rngs, sharding)

  return make
