"""Rotary position embeddings in the Hugging Face rotate-half layout.

Angles are computed in float32 from `rope_theta` and `rope_scaling` (linear, dynamic NTK, llama3),
matching transformers' `ROPE_INIT_FUNCTIONS` and its dynamic update, so converted weights need no
q/k permutation.

`max_position_embeddings` is the longest sequence the model takes, after scaling. An HF config.json
with linear or dynamic scaling stores the length before it (`original_length`): its readers
multiply that by the factor, and dynamic NTK rescales past it.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from xy_jax.models.model_config import ModelConfig


def _rope_kind(cfg: ModelConfig) -> str:
  rs = cfg.rope_scaling or {}
  return rs.get("rope_type", rs.get("type", "default"))


# Scalings whose HF config.json holds the length before scaling.
FACTOR_SCALED = ("linear", "dynamic")
# transformers fills in max_position_embeddings instead; the HF export writes ours out.
LLAMA3_ORIGINAL_DEFAULT = 8192


def unscaled_length(length: int, factor: float) -> int:
  """`length` over `factor`, rounded up: an HF length M read as int(M * factor) comes back."""
  return math.ceil(length / factor - 1e-9)


def original_length(cfg: ModelConfig) -> int:
  """The length before linear or dynamic scaling, where dynamic NTK starts rescaling and what HF's
  config.json calls max_position_embeddings. Other RoPE types: max_position_embeddings."""
  if _rope_kind(cfg) not in FACTOR_SCALED:
    return cfg.max_position_embeddings
  return unscaled_length(cfg.max_position_embeddings, float(cfg.rope_scaling["factor"]))


def inverse_frequencies(cfg: ModelConfig, seq_len: jnp.ndarray | None = None) -> jnp.ndarray:
  """[H/2] float32 inverse frequencies. `seq_len` (traced ok) drives dynamic NTK scaling."""
  dim = cfg.resolved_head_dim
  exponents = jnp.arange(0, dim, 2, dtype=jnp.float32) / dim
  base = jnp.float32(cfg.rope_theta)
  kind = _rope_kind(cfg)
  rs = cfg.rope_scaling or {}

  if kind == "dynamic":
    # HF recomputes the base once the sequence outgrows its max_position_embeddings: our length
    # before scaling.
    factor = float(rs["factor"])
    max_pos = float(original_length(cfg))
    if seq_len is not None:
      seq = jnp.maximum(jnp.asarray(seq_len, jnp.float32), max_pos)
      base = base * ((factor * seq / max_pos) - (factor - 1)) ** (dim / (dim - 2))
  inv_freq = 1.0 / (base ** exponents)

  if kind == "linear":
    inv_freq = inv_freq / float(rs["factor"])
  elif kind == "llama3":
    factor = float(rs["factor"])
    low = float(rs.get("low_freq_factor", 1.0))
    high = float(rs.get("high_freq_factor", 4.0))
    old_ctx = float(rs.get("original_max_position_embeddings", LLAMA3_ORIGINAL_DEFAULT))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    wavelen = 2 * math.pi / inv_freq
    scaled = jnp.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    inv_freq = jnp.where(is_medium, smoothed, scaled)
  return inv_freq


def rope_cos_sin(cfg: ModelConfig, positions: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """positions [B, T] int -> cos, sin [B, T, H] float32 (the two halves repeated, as HF does)."""
  seq_len = jnp.max(positions) + 1 if _rope_kind(cfg) == "dynamic" else None
  inv_freq = inverse_frequencies(cfg, seq_len)
  angles = positions.astype(jnp.float32)[..., None] * inv_freq
  angles = jnp.concatenate([angles, angles], axis=-1)
  # HF's attention_scaling is 1.0 for every rope type supported here.
  return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray) -> jnp.ndarray:
  """x [B, T, N, H]; cos/sin [B, T, H]. Rotate-half in float32, result in x's dtype."""
  xf = x.astype(jnp.float32)
  half = xf.shape[-1] // 2
  rotated = jnp.concatenate([-xf[..., half:], xf[..., :half]], axis=-1)
  out = xf * cos[:, :, None, :] + rotated * sin[:, :, None, :]
  return out.astype(x.dtype)
