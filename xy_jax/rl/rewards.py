"""Rule-based rewards: a stand-in for the reward model in experiments and tests.

Each takes the answer tokens [B, N] and response mask [B, N] and returns a score per answer [B].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def brevity(answers: jax.Array, mask: jax.Array) -> jax.Array:
  """1 for a one-token answer, -1 for one that fills the whole budget."""
  n = answers.shape[1]
  length = jnp.sum(mask, axis=1)
  return 1.0 - 2.0 * (length - 1) / max(n - 1, 1)


RULES = {"brevity": brevity}
