"""Perplexity over documents: exp(total NLL of every token after the first / their count)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def _bucket(n: int, limit: int) -> int:
  return min(limit, max(16, 1 << (n - 1).bit_length()))


class PerplexityEvaluator:

  def __init__(self, model: nnx.Module, pad_id: int):
    self.graphdef, self.state = nnx.split(model)
    self.max_len = model.model.cfg.max_position_embeddings
    self.pad_id = pad_id
    self._nll = jax.jit(self._nll_impl)

  def _nll_impl(self, state, tokens, lengths):
    model = nnx.merge(self.graphdef, state)
    segment_ids = (jnp.arange(tokens.shape[1])[None] < lengths[:, None]).astype(jnp.int32)
    logits, _ = model(tokens, segment_ids=segment_ids)
    logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    nll = -jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
    mask = jnp.arange(1, tokens.shape[1])[None] < lengths[:, None]
    return jnp.sum(jnp.where(mask, nll, 0.0)), jnp.sum(mask)

  def perplexity(self, docs: Sequence[Sequence[int]], batch_size: int = 8) -> float:
    """exp of the mean NLL per predicted token over `docs`."""
    nll, n = self.evaluate(docs, batch_size)
    return math.exp(nll / n)

  def evaluate(self, docs: Sequence[Sequence[int]], batch_size: int = 8) -> tuple[float, int]:
    """Total NLL (nats) and predicted-token count over `docs` (each already [BOS] + ids)."""
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
      batch = [docs[i][:self.max_len] for i in order[start:start + batch_size]]
      width = _bucket(max(len(d) for d in batch), self.max_len)
      tokens = np.full((batch_size, width), self.pad_id, np.int32)
      lengths = np.zeros((batch_size,), np.int32)
      for r, d in enumerate(batch):
        tokens[r, :len(d)] = d
        lengths[r] = len(d)
      nll, n = self._nll(self.state, tokens, lengths)
      total += float(nll)
      count += int(n)
    return total, count
