"""Reward model / critic: the decoder with its LM head replaced by a linear value head.

HF's `LlamaForSequenceClassification` with `num_labels=1`: `model.*` plus `score.weight`. The
head reads the final hidden states (after the last norm); a sequence's score is the value at its
last non-pad token (the `</s>`), and the per-token values are what a PPO critic uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from xy_jax.models.llama import Decoder, Weight, default_positions
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding


class RewardModel(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, sharding: LogicalSharding = LogicalSharding()):
    self.model = Decoder(cfg, rngs, sharding)
    std = 1.0 / (cfg.hidden_size + 1) ** 0.5
    self.score = Weight((cfg.hidden_size, 1), ("embed", None), cfg, rngs,
                        init=jax.nn.initializers.normal(std), quantizable=False, sharding=sharding)

  def __call__(self, tokens, positions=None, segment_ids=None, cache=None):
    """Per-token values [B, T] float32 (and the cache, as CausalLM returns)."""
    positions, segment_ids = default_positions(tokens, positions, segment_ids)
    h, cache = self.model(tokens, positions, segment_ids, cache)
    return self.score("BTD,DO->BTO", h, out_dtype=jnp.float32)[..., 0], cache


def last_token_index(segment_ids: jax.Array) -> jax.Array:
  """Index of each right-padded row's last real token (segment id > 0)."""
  t = segment_ids.shape[1]
  return jnp.max(jnp.where(segment_ids > 0, jnp.arange(t)[None], 0), axis=1)


def sequence_scores(values: jax.Array, segment_ids: jax.Array) -> jax.Array:
  """values [B, T] -> [B]: the value at the last real token."""
  idx = last_token_index(segment_ids)
  return jnp.take_along_axis(values, idx[:, None], axis=1)[:, 0]
