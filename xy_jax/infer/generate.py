"""Batched, jitted decoding with a KV cache.

Prompts are left-padded (pad slots get segment id 0, so no real token attends to them), prefilled
in one pass, then decoded one token per step inside `jax.lax.while_loop` until every row has
emitted EOS or `max_new_tokens` is reached. One compile per (batch, padded prompt length,
sampling config).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xy_jax.infer.sampling import SamplingConfig, sample
from xy_jax.models.llama import KVCache

PROMPT_BUCKET = 32  # prompt lengths round up to a multiple of this to bound recompiles


@dataclasses.dataclass
class Generation:
  tokens: list[int]  # generated ids, without the closing EOS
  finished: bool  # True when the row emitted EOS


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, bucket: int = PROMPT_BUCKET):
  length = max(len(p) for p in prompts)
  length = -(-length // bucket) * bucket
  tokens = np.full((len(prompts), length), pad_id, np.int32)
  valid = np.zeros((len(prompts), length), bool)
  for i, p in enumerate(prompts):
    if len(p):
      tokens[i, -len(p):] = p
      valid[i, -len(p):] = True
  return tokens, valid


def decode(model: nnx.Module, tokens: jax.Array, valid: jax.Array, rng: jax.Array,
           sampling: SamplingConfig, eos_id: int, pad_id: int) -> tuple[jax.Array, jax.Array]:
  """Prefill left-padded prompts [B, P], then sample up to `max_new_tokens`.

  Returns (tokens [B, N] with `pad_id` after a row's EOS, finished [B]). Pure and jittable: PPO
  rollouts call it on the actor's live parameters.
  """
  b, p = tokens.shape
  n = sampling.max_new_tokens
  cfg = model.model.cfg
  positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0).astype(jnp.int32)
  cache = KVCache.empty(cfg, b, p + n)
  logits, cache = model(tokens, positions, valid.astype(jnp.int32), cache)
  tok = sample(logits[:, -1], jax.random.fold_in(rng, 0), sampling)
  out = jnp.full((b, n), pad_id, jnp.int32).at[:, 0].set(tok)
  done = tok == eos_id
  pos = positions[:, -1] + 1

  def cond(carry):
    i, _, _, _, done, _ = carry
    return (i < n) & ~jnp.all(done)

  def body(carry):
    i, cache, tok, pos, done, out = carry
    logits, cache = model(tok[:, None], pos[:, None], jnp.ones((b, 1), jnp.int32), cache)
    nxt = sample(logits[:, -1], jax.random.fold_in(rng, i), sampling)
    nxt = jnp.where(done, pad_id, nxt)
    out = out.at[:, i].set(nxt)
    return i + 1, cache, nxt, pos + 1, done | (nxt == eos_id), out

  _, _, _, _, done, out = jax.lax.while_loop(cond, body, (jnp.int32(1), cache, tok, pos, done, out))
  return out, done


class Generator:
  """Holds a model's graph and parameters; `generate` decodes batches of prompt ids."""

  def __init__(self, model: nnx.Module, eos_id: int, pad_id: int):
    self.graphdef, self.state = nnx.split(model)
    self.cfg = model.model.cfg
    self.eos_id, self.pad_id = eos_id, pad_id
    self._decode = jax.jit(
        lambda state, tokens, valid, rng, sampling: decode(
            nnx.merge(self.graphdef, state), tokens, valid, rng, sampling, eos_id, pad_id),
        static_argnames=("sampling",))

  def generate(self, prompts: Sequence[Sequence[int]], sampling: SamplingConfig,
               seed: int = 0) -> list[Generation]:
    limit = self.cfg.max_position_embeddings
    tokens, valid = left_pad(prompts, self.pad_id)
    longest = max(len(p) for p in prompts)
    if longest + sampling.max_new_tokens > limit:
      raise ValueError(f"prompt ({longest} tokens) + max_new_tokens={sampling.max_new_tokens} "
                       f"exceeds max_position_embeddings={limit}")
    out, done = self._decode(self.state, tokens, valid, jax.random.key(seed), sampling)
    return finished_rows(np.asarray(out), np.asarray(done), self.eos_id)


def finished_rows(out: np.ndarray, done: np.ndarray, eos_id: int) -> list[Generation]:
  results = []
  for row, fin in zip(out, done):
    ids = row.tolist()
    if fin:
      ids = ids[:ids.index(eos_id)]
    results.append(Generation(ids, bool(fin)))
  return results
