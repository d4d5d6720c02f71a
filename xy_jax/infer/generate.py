"""Batched, jitted decoding with a KV cache.

Prompts are left-padded (pad slots get segment id 0, so no real token attends to them), prefilled
in one pass, then decoded one token per step inside `jax.lax.while_loop` until every row has
emitted EOS or `max_new_tokens` is reached. One compile per (batch, padded prompt length,
sampling config).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xy_jax.infer.sampling import SamplingConfig, sample
from xy_jax.models.llama import KVCache, unstack_layers

PROMPT_BUCKET = 32  # prompt lengths round up to a multiple of this to bound recompiles


@dataclasses.dataclass
class Generation:
  tokens: list[int]  # generated ids, without the closing EOS
  finished: bool  # True when the row emitted EOS


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, bucket: int = PROMPT_BUCKET,
             length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(tokens [B, L] int32, valid [B, L] bool), prompts right-aligned. L: `length`, else the longest
  prompt rounded up to a multiple of `bucket` (few distinct shapes, few compiles)."""
  if length is None:
    length = -(-max(len(p) for p in prompts) // bucket) * bucket
  tokens = np.full((len(prompts), length), pad_id, np.int32)
  valid = np.zeros((len(prompts), length), bool)
  for i, p in enumerate(prompts):
    if len(p):
      tokens[i, -len(p):] = p
      valid[i, -len(p):] = True
  return tokens, valid


def prefill(model: nnx.Module, tokens: jax.Array, valid: jax.Array, rng: jax.Array,
            sampling: SamplingConfig, layer_states=None) -> tuple[jax.Array, KVCache, jax.Array]:
  """Run left-padded prompts [B, P] through the model into a cache with room for
  `max_new_tokens`; returns (first sampled token [B], cache, its position [B]).

  `layer_states`: per-layer parameters from `unstack_layers` (CPU), else the model's own."""
  b, p = tokens.shape
  positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0).astype(jnp.int32)
  # CPU decoding (unstacked layers) keeps the cache in float32: XLA:CPU upcasts a 16-bit in-place
  # cache update to float32 and so rewrites the whole cache for every layer of every token.
  cache_dtype = jnp.float32 if layer_states is not None else None
  cache = KVCache.empty(model.model.cfg, b, p + sampling.max_new_tokens, cache_dtype)
  logits, cache = model(tokens, positions, valid.astype(jnp.int32), cache, layer_states)
  tok = sample(logits[:, -1], jax.random.fold_in(rng, 0), sampling)
  return tok, cache, positions[:, -1] + 1


def next_token(model: nnx.Module, cache: KVCache, tok: jax.Array, pos: jax.Array, rng: jax.Array,
               i: jax.Array, sampling: SamplingConfig,
               layer_states=None) -> tuple[jax.Array, KVCache]:
  """Feed token `i - 1` of every row (at positions `pos`) and sample token `i`."""
  logits, cache = model(tok[:, None], pos[:, None], jnp.ones((tok.shape[0], 1), jnp.int32), cache,
                        layer_states)
  return sample(logits[:, -1], jax.random.fold_in(rng, i), sampling), cache


def decode(model: nnx.Module, tokens: jax.Array, valid: jax.Array, rng: jax.Array,
           sampling: SamplingConfig, eos_id: int, pad_id: int,
           layer_states=None) -> tuple[jax.Array, jax.Array]:
  """Prefill left-padded prompts [B, P], then sample up to `max_new_tokens`.

  Returns (tokens [B, N] with `pad_id` after a row's EOS, finished [B]). Pure and jittable: PPO
  rollouts call it on the actor's live parameters.
  """
  b, n = tokens.shape[0], sampling.max_new_tokens
  tok, cache, pos = prefill(model, tokens, valid, rng, sampling, layer_states)
  out = jnp.full((b, n), pad_id, jnp.int32).at[:, 0].set(tok)
  done = tok == eos_id

  def cond(carry):
    i, _, _, _, done, _ = carry
    return (i < n) & ~jnp.all(done)

  def body(carry):
    i, cache, tok, pos, done, out = carry
    nxt, cache = next_token(model, cache, tok, pos, rng, i, sampling, layer_states)
    nxt = jnp.where(done, pad_id, nxt)
    out = out.at[:, i].set(nxt)
    return i + 1, cache, nxt, pos + 1, done | (nxt == eos_id), out

  _, _, _, _, done, out = jax.lax.while_loop(cond, body, (jnp.int32(1), cache, tok, pos, done, out))
  return out, done


class Generator:
  """Holds a model's graph and parameters; `generate` decodes batches of prompt ids.

  On CPU the layer parameters are unstacked once into per-layer buffers (`unstack_layers`: XLA:CPU
  would otherwise copy every weight for every generated token); elsewhere the stacked layers are
  scanned as in training. `unstack` forces either way.
  """

  def __init__(self, model: nnx.Module, eos_id: int, pad_id: int, unstack: bool | None = None):
    self.graphdef, self.state = nnx.split(model)
    self.cfg = model.model.cfg
    self.eos_id, self.pad_id = eos_id, pad_id
    if unstack is None:
      unstack = next(iter(jax.tree.leaves(self.state)[0].devices())).platform == "cpu"
    self.layers = None
    if unstack:
      self.state, self.layers = unstack_layers(self.state, self.cfg.num_hidden_layers)
    merge = lambda state: nnx.merge(self.graphdef, state)  # noqa: E731
    self._decode = jax.jit(
        lambda state, layers, tokens, valid, rng, sampling: decode(
            merge(state), tokens, valid, rng, sampling, eos_id, pad_id, layers),
        static_argnames=("sampling",))
    self._prefill = jax.jit(
        lambda state, layers, tokens, valid, rng, sampling: prefill(
            merge(state), tokens, valid, rng, sampling, layers),
        static_argnames=("sampling",))
    self._next = jax.jit(
        lambda state, layers, cache, tok, pos, rng, i, sampling: next_token(
            merge(state), cache, tok, pos, rng, i, sampling, layers),
        static_argnames=("sampling",), donate_argnums=(2,))

  def _check_length(self, longest: int, sampling: SamplingConfig) -> None:
    limit = self.cfg.max_position_embeddings
    if longest + sampling.max_new_tokens > limit:
      raise ValueError(f"prompt ({longest} tokens) + max_new_tokens={sampling.max_new_tokens} "
                       f"exceeds max_position_embeddings={limit}")

  def generate(self, prompts: Sequence[Sequence[int]], sampling: SamplingConfig,
               seed: int = 0) -> list[Generation]:
    tokens, valid = left_pad(prompts, self.pad_id)
    self._check_length(max(len(p) for p in prompts), sampling)
    out, done = self._decode(self.state, self.layers, tokens, valid, jax.random.key(seed), sampling)
    return finished_rows(np.asarray(out), np.asarray(done), self.eos_id)


  def stream(self, prompt: Sequence[int], sampling: SamplingConfig, seed: int = 0) -> Iterator[int]:
    """Yield one prompt's new tokens as they are sampled (EOS ends the stream, unyielded).

    The same prefill and step as `generate` (so the same tokens for the same seed), run one
    token per call so a caller can print them as they come.
    """
    self._check_length(len(prompt), sampling)
    tokens, valid = left_pad([prompt], self.pad_id)
    rng = jax.random.key(seed)
    tok, cache, pos = self._prefill(self.state, self.layers, tokens, valid, rng, sampling)
    for i in range(1, sampling.max_new_tokens + 1):
      t = int(tok[0])
      if t == self.eos_id:
        return
      yield t
      if i == sampling.max_new_tokens:
        return
      tok, cache = self._next(self.state, self.layers, cache, tok, pos, rng, jnp.int32(i), sampling)
      pos = pos + 1


def finished_rows(out: np.ndarray, done: np.ndarray, eos_id: int) -> list[Generation]:
  results = []
  for row, fin in zip(out, done):
    ids = row.tolist()
    if fin:
      ids = ids[:ids.index(eos_id)]
    results.append(Generation(ids, bool(fin)))
  return results
