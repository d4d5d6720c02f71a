"""Integer weight quantisation against a numpy transcription of the absmax formula."""

import jax.numpy as jnp
import numpy as np
import pytest

from xy_jax.models import int_weights


def numpy_quantize(w, n_in, qmax, group):
  k = int(np.prod(w.shape[:n_in]))
  w2 = w.reshape(k, -1).astype(np.float64)
  g = k // group
  wg = w2.reshape(g, group, -1)
  scale = np.abs(wg).max(axis=1) / qmax
  scale[scale == 0] = 1.0
  q = np.clip(np.round(wg / scale[:, None]), -qmax, qmax)
  return q.reshape(w.shape), scale.reshape((g,) + w.shape[n_in:])


@pytest.mark.parametrize("mode,qmax,group_size,expect_group", [
    ("int8", 127, 128, None), ("int4", 7, 16, 16), ("int4", 7, 0, None)])
@pytest.mark.parametrize("shape,n_in", [((64, 4, 8), 1), ((4, 16, 24), 2)])
def test_quantize_matches_numpy(mode, qmax, group_size, expect_group, shape, n_in):
  rng = np.random.default_rng(0)
  w = rng.normal(0, 0.02, shape).astype(np.float32)
  w[0] = 0.0  # an all-zero group must not divide by zero
  q, scale = int_weights.quantize(jnp.asarray(w), n_in, mode, group_size)
  k = int(np.prod(shape[:n_in]))
  ref_q, ref_scale = numpy_quantize(w, n_in, qmax, expect_group or k)
  assert q.dtype == int_weights.storage_dtype(mode) and q.shape == w.shape
  np.testing.assert_array_equal(np.asarray(q.astype(jnp.int32)), ref_q)
  np.testing.assert_allclose(np.asarray(scale), ref_scale, rtol=1e-6)
  back = np.asarray(int_weights.dequantize(q, scale, n_in))
  # rounding error at most half a step of the element's own group
  step = np.repeat(ref_scale.reshape(ref_scale.shape[0], -1), k // ref_scale.shape[0], axis=0)
  assert np.all(np.abs(back.reshape(k, -1) - w.reshape(k, -1)) <= step / 2 + 1e-7)


@pytest.mark.parametrize("mode,group_size", [("int8", 0), ("int4", 8)])
def test_quantized_matmul_equals_dequantized_dot(mode, group_size):
  rng = np.random.default_rng(1)
  w = rng.normal(0, 0.02, (32, 24)).astype(np.float32)
  x = rng.normal(0, 1, (5, 32)).astype(np.float32)
  q, scale = int_weights.quantize(jnp.asarray(w), 1, mode, group_size)
  y = int_weights.quantized_matmul(jnp.asarray(x), q, scale, jnp.float32, jnp.float32)
  ref = x @ np.asarray(int_weights.dequantize(q, scale, 1))
  np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)


def test_group_size_must_divide():
  with pytest.raises(ValueError, match="quant_group_size=24 .* such as 8"):
    int_weights.quantize(jnp.ones((64, 8)), 1, "int4", 24)
