"""Symmetric (absmax) weight-only integer quantisation of a projection weight.

A weight of shape [*contracted, *out] (the contracted dims lead, as in `llama.Weight`) is viewed as a
[k, m] matrix. Each output column is split into groups of `group_size` consecutive contracted rows;
each group gets one scale = max|w| / qmax, and values are rounded to integers in [-qmax, qmax].

  int8: one group per column (per-output-channel), qmax 127, stored as int8.
  int4: groups of `group_size` rows (128 by default), qmax 7, stored as jnp.int4 (2 per byte on
        TPU/GPU; XLA:CPU keeps one per byte in memory, the checkpoint holds them packed).

Scales have shape [groups, *out]. Dequantised: w[g*gs + i, o] = q[g*gs + i, o] * scale[g, o].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from xy_jax.errors import ConfigError

MODES = ("none", "int8", "int4")
_QMAX = {"int8": 127, "int4": 7}
_STORAGE = {"int8": jnp.int8, "int4": jnp.int4}
BITS = {"none": None, "int8": 8, "int4": 4}


def storage_bits(dtype) -> int:
  """Bits per element as stored on TPU/GPU and in checkpoints (int4 packs two per byte)."""
  dtype = jnp.dtype(dtype)
  return 4 if dtype in (jnp.int4, jnp.uint4) else 8 * dtype.itemsize


def storage_dtype(mode: str):
  return _STORAGE[mode]


def num_groups(k: int, mode: str, group_size: int) -> int:
  """Groups along the contracted size `k` (int8 is per-channel: one group)."""
  if mode == "int8" or group_size <= 0 or group_size >= k:
    return 1
  if k % group_size:
    hint = math.gcd(k, group_size)
    raise ValueError(f"model.quant_group_size={group_size} does not divide a projection's contracted "
                     f"size {k}; use a common divisor such as {hint}")
  return k // group_size


def contracted_sizes(cfg) -> list[int]:
  """The contracted sizes of a model's quantisable projections (a ModelConfig `cfg`)."""
  return sorted({cfg.hidden_size, cfg.num_attention_heads * cfg.resolved_head_dim, cfg.intermediate_size})


def check_group_size(cfg, field: str) -> None:
  """ConfigError naming `field` (where `cfg.quant_group_size` came from) unless the int4 groups
  divide every projection; the advice is a size that divides them all."""
  gs = cfg.quant_group_size
  if cfg.quant != "int4" or gs <= 0:
    return
  bad = [k for k in contracted_sizes(cfg) if k > gs and k % gs]
  if bad:
    hint = math.gcd(gs, *contracted_sizes(cfg))
    raise ConfigError(f"{field}={gs} does not divide the contracted size {bad[0]} of this model's "
                      f"projections ({', '.join(map(str, contracted_sizes(cfg)))}); use {hint}, "
                      f"which divides them all: {field}={hint}")


def quantize(w: jax.Array, n_in: int, mode: str, group_size: int,
             scale_dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
  """w [*contracted(n_in dims), *out] -> (q with w's shape, scale [groups, *out])."""
  contracted, out = w.shape[:n_in], w.shape[n_in:]
  k, m = math.prod(contracted), math.prod(out)
  g = num_groups(k, mode, group_size)
  wg = w.astype(jnp.float32).reshape(g, k // g, m)
  scale = jnp.max(jnp.abs(wg), axis=1) / _QMAX[mode]  # [g, m]
  scale = jnp.where(scale == 0, 1.0, scale)
  q = jnp.clip(jnp.round(wg / scale[:, None, :]), -_QMAX[mode], _QMAX[mode])
  return q.astype(_STORAGE[mode]).reshape(w.shape), scale.astype(scale_dtype).reshape((g,) + out)


def dequantize(q: jax.Array, scale: jax.Array, n_in: int, dtype=jnp.float32) -> jax.Array:
  """The inverse view of `quantize` (exact up to the rounding `quantize` did)."""
  k = math.prod(q.shape[:n_in])
  g = scale.shape[0]
  qg = q.astype(dtype).reshape(g, k // g, -1)
  return (qg * scale.astype(dtype).reshape(g, 1, -1)).reshape(q.shape)


def quantized_matmul(x2: jax.Array, q2: jax.Array, scale2: jax.Array, dtype, out_dtype) -> jax.Array:
  """x2 [r, k] @ dequant(q2 [k, m], scale2 [g, m]) -> [r, m].

  Per-channel scales (g == 1) are applied to the matmul's output, so the integer weight feeds the
  dot directly (XLA fuses the int->float convert into it); grouped scales dequantise first.
  """
  g = scale2.shape[0]
  if g == 1:
    y = jnp.dot(x2, q2.astype(dtype), preferred_element_type=jnp.float32)
    return (y * scale2.astype(jnp.float32)).astype(out_dtype)
  k, m = q2.shape
  w = (q2.astype(dtype).reshape(g, k // g, m) * scale2.astype(dtype)[:, None, :]).reshape(k, m)
  return jnp.dot(x2, w, preferred_element_type=out_dtype)
