"""GPTQ in JAX against a numpy transcription of the reference algorithm, and against rounding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.quant.gptq_reference import fasterquant
from xy_jax.models import int_weights
from xy_jax.quant.gptq import GRID, block_rows, gptq


def _layer(k=256, m=96, n=2048, seed=0):
  """Inputs with correlated channels of very different sizes (what makes GPTQ and act-order pay)."""
  rng = np.random.default_rng(seed)
  mix = rng.normal(size=(k, k)) / np.sqrt(k) + np.eye(k)
  x = (rng.standard_t(4, size=(n, k)) @ mix) * np.exp(rng.normal(0, 1, size=k))
  x[:, 3] = 0  # a dead input
  w = rng.normal(0, 0.05, size=(k, m)).astype(np.float32)
  return x.astype(np.float32), w


def _output_error(x, w, codes, scale):
  deq = np.asarray(int_weights.dequantize(jnp.asarray(codes), jnp.asarray(scale), 1))
  return float(np.sum((x @ (w - deq)) ** 2))


CASES = [("int4", 64, False), ("int4", 64, True), ("int4", 0, False), ("int8", 0, False),
         ("int8", 0, True)]


@pytest.mark.parametrize("mode,group_size,act_order", CASES)
def test_same_codes_and_scales_as_the_reference(mode, group_size, act_order):
  x, w = _layer()
  h = x.T.astype(np.float64) @ x
  out = gptq(jnp.asarray(w), jnp.asarray(h, jnp.float32), mode=mode, group_size=group_size,
             act_order=act_order)
  k = w.shape[0]
  gs = group_size if mode == "int4" and group_size else -1
  ref_q, ref_scale, ref_loss = fasterquant(
      w.T, h.astype(np.float32), GRID[mode], group_size=gs,
      blocksize=block_rows(k, group_size if mode == "int4" else 0, 128), actorder=act_order,
      static_groups=act_order and gs != -1)
  codes = np.asarray(out.codes, np.int32)
  assert codes.dtype == np.int32 and out.codes.dtype == int_weights.storage_dtype(mode)
  # float32 summation orders differ: a code at a rounding tie may flip, and the flip propagates to
  # later rows of its output column (and, with dynamic groups, to that column's later scales).
  scale, ref_scale = np.asarray(out.scale), ref_scale.reshape(-1, w.shape[1])
  assert np.mean(np.isclose(scale, ref_scale, rtol=1e-4)) > 0.99
  np.testing.assert_allclose(scale, ref_scale, rtol=0.05)
  agree = np.mean(codes == ref_q.T)
  assert agree > 0.995, agree
  assert abs(float(out.loss) / ref_loss - 1) < 0.02
  assert codes[3].tolist() == [0] * w.shape[1]  # the dead input's weights are zeroed


@pytest.mark.parametrize("mode,group_size", [("int4", 64), ("int8", 0)])
def test_lower_output_error_than_rounding(mode, group_size):
  x, w = _layer(seed=1)
  h = x.T @ x
  rtn_q, rtn_s = int_weights.quantize(jnp.asarray(w), 1, mode, group_size)
  rtn = _output_error(x, w, np.asarray(rtn_q, np.int32), rtn_s)
  for act_order in (False, True):
    out = gptq(jnp.asarray(w), jnp.asarray(h), mode=mode, group_size=group_size, act_order=act_order)
    err = _output_error(x, w, np.asarray(out.codes, np.int32), out.scale)
    assert err < 0.7 * rtn, (act_order, err / rtn)


def test_block_rows_tiles_groups():
  assert block_rows(4096, 128, 128) == 128
  assert block_rows(4096, 32, 128) == 32  # each group starts a block
  assert block_rows(4096, 256, 128) == 128
  assert block_rows(4096, 0, 128) == 128
  assert block_rows(96, 0, 128) == 96
  assert block_rows(11000, 0, 128) == 125  # blocks tile k


def test_sharded_over_output_columns_gives_the_same_codes():
  x, w = _layer(k=128, m=64, n=512, seed=2)
  h = jnp.asarray(x.T @ x)
  mesh = jax.make_mesh((8,), ("model",), axis_types=(jax.sharding.AxisType.Auto,))
  ws = jax.device_put(jnp.asarray(w), jax.NamedSharding(mesh, jax.P(None, "model")))
  hs = jax.device_put(h, jax.NamedSharding(mesh, jax.P()))
  sharded = gptq(ws, hs, mode="int4", group_size=32)
  single = gptq(jnp.asarray(w), h, mode="int4", group_size=32)
  assert sharded.codes.sharding.spec == jax.P(None, "model")
  np.testing.assert_array_equal(np.asarray(sharded.codes, np.int32), np.asarray(single.codes, np.int32))


def test_a_hessian_that_is_not_positive_definite_shows_in_the_loss():
  # Per-channel scales come from the original weight and stay finite: only the loss tells.
  w = jnp.asarray(np.random.default_rng(3).normal(size=(64, 32)), jnp.float32)
  out = gptq(w, -jnp.eye(64), mode="int8", group_size=0)
  assert bool(jnp.all(jnp.isfinite(out.scale))) and not bool(jnp.isfinite(out.loss))
