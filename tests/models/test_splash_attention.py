"""The splash-attention path (Pallas interpret mode on CPU) against the dense XLA path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xy_jax.models.attention import dot_product_attention, resolve_impl
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.sharding import LogicalSharding, make_mesh


def _packed_segments(b, t, rng):
  """Rows of 2-3 documents and trailing padding (segment 0)."""
  seg = np.zeros((b, t), np.int32)
  for r in range(b):
    cuts = sorted(rng.choice(np.arange(8, t - 8), 2, replace=False))
    seg[r, :cuts[0]], seg[r, cuts[0]:cuts[1]], seg[r, cuts[1]:t - 5] = 1, 2, 3
  return seg


def test_splash_equals_xla_on_packed_rows():
  rng = np.random.default_rng(0)
  b, t, n, k, h = 2, 128, 4, 2, 32
  q, kk, v = (jnp.asarray(rng.normal(size=(b, t, x, h)), jnp.float32) for x in (n, k, k))
  seg = jnp.asarray(_packed_segments(b, t, rng))

  def run(impl):
    f = lambda q, kk, v: dot_product_attention(q, kk, v, q_segment_ids=seg, kv_segment_ids=seg,  # noqa: E731
                                               impl=impl)
    out = f(q, kk, v)
    grads = jax.grad(lambda *a: jnp.sum(jnp.sin(f(*a))), argnums=(0, 1, 2))(q, kk, v)
    return out, grads

  (out_x, g_x), (out_s, g_s) = run("xla"), run("splash")
  real = np.asarray(seg)[..., None, None] > 0
  np.testing.assert_allclose(np.where(real, out_s, 0), np.where(real, out_x, 0), atol=2e-5)
  for a, b_ in zip(g_s, g_x):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b_), atol=2e-4)


def test_splash_model_on_a_mesh_matches_xla():
  """The whole tiny model, sharded 2x2x2: splash runs per shard under shard_map."""
  sharding = LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}))
  cfg = get_preset("tiny")
  xla = init_model(CausalLM, cfg.replace(attention_impl="xla"), sharding, seed=1)
  splash = init_model(CausalLM, cfg.replace(attention_impl="splash"), sharding, seed=1)
  rng = np.random.default_rng(1)
  tokens = jnp.asarray(rng.integers(4, cfg.vocab_size, (4, 128)), jnp.int32)
  seg = jnp.asarray(_packed_segments(4, 128, rng))
  pos = jnp.asarray(np.broadcast_to(np.arange(128), (4, 128)), jnp.int32)

  def logits(model):
    graphdef, state = nnx.split(model)
    return jax.jit(lambda s: nnx.merge(graphdef, s)(tokens, pos, seg)[0])(state)

  real = np.asarray(seg)[..., None] > 0
  np.testing.assert_allclose(np.where(real, logits(splash), 0), np.where(real, logits(xla), 0),
                             atol=1e-4)


@pytest.mark.parametrize("platform,dtype,expect", [
    ("tpu", jnp.bfloat16, "splash"), ("gpu", jnp.bfloat16, "cudnn"), ("gpu", jnp.float32, "xla"),
    ("cpu", jnp.bfloat16, "xla")])
def test_auto_picks_by_the_mesh_platform(platform, dtype, expect):
  assert resolve_impl("auto", dtype, platform) == expect
