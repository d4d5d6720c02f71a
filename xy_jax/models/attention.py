"""The one attention entry point: causal + segment-id masking over a pluggable kernel.

Packed rows carry `segment_ids` (0 = padding); a query sees a key only in the same segment and at
or before its own index. The same rule serves training (packed rows), prefill of left-padded
prompts and KV-cache decoding (`q_offset` = the cache index of the first query).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def resolve_impl(impl: str, dtype) -> str:
  if impl != "auto":
    return impl
  on_gpu = jax.default_backend() == "gpu"
  return "cudnn" if on_gpu and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16) else "xla"


def attention_mask(q_segment_ids: jax.Array, kv_segment_ids: jax.Array,
                   q_offset: jax.Array | int = 0) -> jax.Array:
  """[B, T] and [B, S] segment ids -> boolean mask [B, 1, T, S]."""
  t, s = q_segment_ids.shape[1], kv_segment_ids.shape[1]
  same = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]
  causal = jnp.arange(s)[None, :] <= (q_offset + jnp.arange(t))[:, None]
  return (same & causal[None])[:, None]


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, q_segment_ids: jax.Array,
                          kv_segment_ids: jax.Array, q_offset: jax.Array | int = 0,
                          impl: str = "auto") -> jax.Array:
  """q [B,T,N,H], k/v [B,S,K,H] (N = K*G, K outer as in HF) -> [B,T,N,H]."""
  mask = attention_mask(q_segment_ids, kv_segment_ids, q_offset)
  impl = resolve_impl(impl, q.dtype)
  if impl == "xla":
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="xla")
  if impl == "cudnn":
    # cudnn's flash kernel takes the segment mask as a dense mask; causality stays in the mask so
    # the same call serves decoding, where queries are offset into the cache.
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="cudnn")
  raise ValueError(f"model.attention_impl={impl!r}: unknown attention implementation")
