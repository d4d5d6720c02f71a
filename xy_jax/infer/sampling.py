"""Next-token choice: greedy, or temperature + nucleus (top-p) sampling."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """Defaults are the model card's: temperature 0.7, top-p 0.95, 256 new tokens."""

  greedy: bool = False
  temperature: float = 0.7
  top_p: float = 0.95
  max_new_tokens: int = 256

  def __post_init__(self):
    if not self.greedy and self.temperature <= 0:
      raise ValueError(f"temperature={self.temperature}: must be > 0 (or use greedy decoding)")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"top_p={self.top_p}: must be in (0, 1]")
    if self.max_new_tokens <= 0:
      raise ValueError(f"max_new_tokens={self.max_new_tokens}: must be positive")


def top_p_filter(logits: jax.Array, top_p: float) -> jax.Array:
  """Mask (to -inf) every token outside the smallest set whose probability reaches `top_p`."""
  if top_p >= 1.0:
    return logits
  order = jnp.argsort(-logits, axis=-1)
  sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs  # mass strictly before each token
  keep_sorted = before < top_p  # the top token always stays
  keep = jnp.zeros_like(keep_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(keep_sorted)
  return jnp.where(keep, logits, -jnp.inf)


def sample(logits: jax.Array, rng: jax.Array, cfg: SamplingConfig) -> jax.Array:
  """logits [B, V] float32 -> token ids [B] int32."""
  if cfg.greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = top_p_filter(logits / cfg.temperature, cfg.top_p)
  return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)
