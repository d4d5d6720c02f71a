"""GPTQ (Frantar et al. 2022, arXiv:2210.17323) for one projection weight, jitted.

Minimises ||X W - X Q||^2 over integer codes Q, one contracted row at a time, spreading each row's
rounding error over the rows not yet quantised through the inverse Hessian H^-1 (H = X^T X of the
calibration inputs X). Rows are taken in blocks; inside a block the error is applied eagerly, to
the rest of the matrix once per block ("lazy batch update"). Our weights are [in, out] (the
contracted dim leads), so GPTQ's "columns" are our rows and every output column is independent:
on a mesh the weight is sharded over its output dim and H is replicated, and the whole algorithm
runs without communication.

Why not qwix's GPTQ (`qwix/contrib/gptq_core.py`): it loops over columns and blocks in Python (a
70B's down_proj unrolls 28,672 steps into the program), has no act-order, and writes its own
QArray. Here both loops are `fori_loop`s, act-order uses static groups (scales from the original
weight in its original group order) so `g_idx` stays monotone and vLLM loads the result, and the
codes come out in `int_weights`' layout, which `convert.hf_quant` packs as GPTQ v1 / bitsandbytes.

The grid is GPTQ's symmetric quantiser for int4 (scale 2*absmax/15, codes in [-8, 7]) and
LLM.int8's for int8 (scale absmax/127 per output channel, codes in [-127, 127]); dequantised,
w = q * scale either way (int_weights.dequantize).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from xy_jax.models import int_weights

# mode -> (lowest code, highest code, absmax / scale)
GRID = {"int4": (-8, 7, 7.5), "int8": (-127, 127, 127.0)}


class GPTQResult(NamedTuple):
  codes: jax.Array  # [k, m] int4/int8
  scale: jax.Array  # [groups, m] float32
  loss: jax.Array  # [] the GPTQ objective's estimate of the added output error, sum over rows


def block_rows(k: int, group_size: int, block_size: int) -> int:
  """Rows per block such that every group starts at a block start (so a group's scale is taken
  from rows that have received every earlier update, as in the reference with blocksize = group
  size) and blocks tile `k`."""
  b = min(block_size, k)
  if 0 < group_size < k:
    b = group_size if group_size <= b else b
    while group_size % b:
      b -= 1
  while k % b:
    b -= 1
  return b


def group_scales(w: jax.Array, groups: int, divisor: float) -> jax.Array:
  """[k, m] -> [groups, m]: absmax / divisor per group of consecutive rows (1 where all zero, as
  GPTQ's quantiser does)."""
  k, m = w.shape
  amax = jnp.max(jnp.abs(w.reshape(groups, k // groups, m)), axis=1)
  return jnp.where(amax == 0, 1.0, amax) / divisor


def inverse_hessian_factor(h: jax.Array, damp: float) -> jax.Array:
  """Upper Cholesky factor U of (H + damp * mean(diag H) * I)^-1, so that (H')^-1 = U^T U."""
  k = h.shape[0]
  h = h + damp * jnp.mean(jnp.diag(h)) * jnp.eye(k, dtype=h.dtype)
  lower = jnp.linalg.cholesky(h)
  hinv = jax.scipy.linalg.cho_solve((lower, True), jnp.eye(k, dtype=h.dtype))
  return jnp.linalg.cholesky(hinv).T


@functools.partial(jax.jit, static_argnames=("mode", "group_size", "block_size", "act_order"))
def gptq(w: jax.Array, h: jax.Array, *, mode: str, group_size: int, damp: float = 0.01,
         block_size: int = 128, act_order: bool = False) -> GPTQResult:
  """Quantise w [k, m] (contracted rows first) given the Hessian h [k, k] of its inputs.

  `group_size` rows share a scale per output column (int4; 0 or >= k: per channel, as int8
  always is). `act_order` takes rows by decreasing H diagonal. A Hessian that is not positive
  definite even after dampening gives a NaN loss (the scales stay finite where they come from the
  original weight); `calibrate` checks it.
  """
  with jax.default_matmul_precision("float32"):  # TPU would otherwise multiply f32 in bf16 passes
    return _gptq(w, h, mode, group_size, damp, block_size, act_order)


def _gptq(w, h, mode, group_size, damp, block_size, act_order) -> GPTQResult:
  k, m = w.shape
  lo, hi, divisor = GRID[mode]
  gs = group_size if mode == "int4" and 0 < group_size < k else k
  groups = k // gs
  rows = block_rows(k, gs if gs < k else 0, block_size)
  w = w.astype(jnp.float32)
  h = h.astype(jnp.float32)

  dead = jnp.diag(h) == 0  # inputs that were always zero: their weights cannot matter
  h = h + jnp.diag(dead.astype(jnp.float32))
  w = jnp.where(dead[:, None], 0.0, w)
  # Per-channel scales and act-order's static groups come from the original weight.
  static = act_order or groups == 1
  scales = group_scales(w, groups, divisor)
  group_of_row = jnp.arange(k) // gs
  if act_order:
    perm = jnp.argsort(-jnp.diag(h), stable=True)
    w, h, group_of_row = w[perm], h[perm][:, perm], group_of_row[perm]
  u = inverse_hessian_factor(h, damp)

  def block(b, carry):
    w, codes, scales, loss = carry
    i1 = b * rows
    if not static:  # a group begins here: its scale from the rows as updated so far
      fresh = group_scales(jax.lax.dynamic_slice(w, (i1, 0), (gs, m)), 1, divisor)
      starts = i1 % gs == 0
      g = i1 // gs
      scales = jnp.where(starts, jax.lax.dynamic_update_slice(scales, fresh, (g, 0)), scales)
    w1 = jax.lax.dynamic_slice(w, (i1, 0), (rows, m))
    u1 = jax.lax.dynamic_slice(u, (i1, i1), (rows, rows))
    row_scales = scales[jax.lax.dynamic_slice(group_of_row, (i1,), (rows,))]  # [rows, m]

    def one_row(i, c):
      w1, q1, err1, loss = c
      x, d, s = w1[i], u1[i, i], row_scales[i]
      q = jnp.clip(jnp.round(x / s), lo, hi)
      e = (x - q * s) / d
      # u1 is upper triangular: rows before i are left as they are.
      w1 = w1 - u1[i][:, None] * e[None, :]
      return w1, q1.at[i].set(q), err1.at[i].set(e), loss + 0.5 * jnp.sum(e * e)

    zeros = jnp.zeros((rows, m), jnp.float32)
    _, q1, err1, loss = jax.lax.fori_loop(0, rows, one_row, (w1, zeros, zeros, loss))
    # Lazy batch update of every later row at once (u's rows are zero left of the diagonal).
    w = w - jax.lax.dynamic_slice(u, (i1, 0), (rows, k)).T @ err1
    codes = jax.lax.dynamic_update_slice(codes, q1, (i1, 0))
    return w, codes, scales, loss

  init = (w, jnp.zeros((k, m), jnp.float32), scales, jnp.zeros((), jnp.float32))
  _, codes, scales, loss = jax.lax.fori_loop(0, k // rows, block, init)
  if act_order:
    codes = codes[jnp.argsort(perm)]
  return GPTQResult(codes.astype(int_weights.storage_dtype(mode)), scales, loss)
