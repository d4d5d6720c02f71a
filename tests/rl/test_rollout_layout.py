"""PPO rollouts in the serving layout: the same tokens as in the training layout, weights moved on device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xy_jax.infer.generate import decode
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError
from xy_jax.models.presets import get_preset
from xy_jax.rl.rollout_layout import auto_shape, parse, rollout_layout
from xy_jax.sharding import LogicalSharding, make_mesh


@pytest.fixture(scope="module")
def trained_layout():
  cfg = get_preset("tiny", dtype="float32")
  train = LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}, jax.devices()[:8]))
  model = init_model(CausalLM, cfg, train, seed=0)
  return cfg, train, model


def _prompts(sharding, rows=8, length=12):
  rng = np.random.default_rng(0)
  tokens = rng.integers(4, 2000, size=(rows, length)).astype(np.int32)
  valid = np.ones_like(tokens)
  for r in range(rows):  # left padding of different lengths
    valid[r, :r] = 0
    tokens[r, :r] = 0
  put = lambda x: jax.device_put(jnp.asarray(x), sharding)  # noqa: E731
  return put(tokens), put(valid)


@pytest.mark.parametrize("sampling", [SamplingConfig(greedy=True, max_new_tokens=16),
                                      SamplingConfig(temperature=1.0, top_p=0.9, max_new_tokens=16)],
                         ids=["greedy", "sampled"])
@pytest.mark.parametrize("spec", ["4,1,2", "1,4,2"], ids=["tensor", "2d"])
def test_rollout_layout_generates_the_training_layouts_tokens(trained_layout, sampling, spec):
  cfg, train, model = trained_layout
  layout = rollout_layout(spec, cfg, train, rows_per_step=8)
  graphdef, params = nnx.split(model)
  pure = nnx.to_pure_dict(params)
  moved = layout.reshard(pure)
  leaf = moved["model"]["layers"]["self_attn"]["q_proj"]["weight"]
  data, fsdp, _ = (int(x) for x in spec.split(","))
  assert leaf.sharding.mesh.shape == {"data": data, "fsdp": fsdp, "tensor": 2}
  l, d, n, h = leaf.shape
  assert leaf.sharding.shard_shape(leaf.shape) == (l, d // fsdp, n // 2, h)  # never split over data
  np.testing.assert_array_equal(np.asarray(leaf), np.asarray(pure["model"]["layers"]["self_attn"]["q_proj"]["weight"]))

  run = jax.jit(lambda g, p, t, v, key: decode(nnx.merge(g, p), t, v, key, sampling, 2, 0), static_argnums=0)
  key = jax.random.key(7)
  rows = jax.sharding.NamedSharding(train.mesh, train.spec(("act_batch",)))
  t_train, v_train = _prompts(rows)
  want, want_done = run(graphdef, pure, t_train, v_train, key)
  t_serve, v_serve = _prompts(layout.rows)
  got, got_done = run(layout.graphdef, moved, t_serve, v_serve, layout.put_replicated(key))
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  np.testing.assert_array_equal(np.asarray(got_done), np.asarray(want_done))
  assert len(set(np.asarray(want)[:, :4].ravel().tolist())) > 4  # real tokens, not all padding


def test_auto_layout_holds_the_fewest_weight_and_cache_bytes_per_chip():
  big = get_preset("xuanyuan2_70b", dtype="bfloat16")
  # 256 prompts x 2048 tokens on v5p-256: tensor 8 (the kv heads), fsdp 4 splits the weights on,
  # data 4 the rows: 4.0 GiB of weights + 5.0 GiB of cache per chip (data 16 x tensor 8: 16.1 + 1.3).
  assert auto_shape(big, 128, 256, 2048) == (4, 4, 8)
  assert auto_shape(big, 128, 16, 2048) == (1, 16, 8)  # few rows: split the weights as far as possible
  assert auto_shape(get_preset("tiny"), 8, 8, 64) == (1, 4, 2)  # tiny: 2 kv heads
  with pytest.raises(ConfigError, match="no layout of 8 devices"):
    auto_shape(big, 8, 256, 2048, hbm_bytes=16 * 2**30)


def test_rollout_layout_errors_name_the_field(trained_layout):
  cfg, train, _ = trained_layout
  assert rollout_layout("train", cfg, train, 8) is None
  assert rollout_layout("2,2,2", cfg, train, 8) is None  # the training layout itself
  with pytest.raises(ConfigError, match="ppo.rollout_mesh='4,4,1': 16 devices"):
    rollout_layout("4,4,1", cfg, train, 8)
  with pytest.raises(ConfigError, match="does not divide ppo.prompts_per_step=6"):
    rollout_layout("8,1,1", cfg, train, 6)
  with pytest.raises(ConfigError, match="'data,fsdp,tensor'"):
    parse("16x8")


def test_a_rollout_mesh_the_actor_does_not_fit_names_ppo_rollout_mesh():
  cfg = get_preset("tiny")  # 2 kv heads: a tensor axis of 4 cannot split them
  train = LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}, jax.devices()[:8]))
  with pytest.raises(ConfigError, match=r"^ppo.rollout_mesh='2,1,4': .*kv_heads=2.* 'tensor'=4"):
    rollout_layout("2,1,4", cfg, train, 8)


def test_bfloat16_rollouts_take_bfloat16_weights_and_the_same_tokens():
  cfg = get_preset("tiny", dtype="bfloat16")  # float32 master weights, bfloat16 compute
  train = LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}, jax.devices()[:8]))
  graphdef, params = nnx.split(init_model(CausalLM, cfg, train, seed=1))
  pure = nnx.to_pure_dict(params)
  layout = rollout_layout("auto", cfg, train, rows_per_step=8, cache_len=24)
  moved = layout.reshard(pure)
  assert moved["lm_head"]["weight"].dtype == jnp.bfloat16 and pure["lm_head"]["weight"].dtype == jnp.float32
  sampling = SamplingConfig(greedy=True, max_new_tokens=12)
  run = jax.jit(lambda g, p, t, v, key: decode(nnx.merge(g, p), t, v, key, sampling, 2, 0), static_argnums=0)
  key = jax.random.key(0)
  want, _ = run(graphdef, pure, *_prompts(jax.sharding.NamedSharding(train.mesh, train.spec(("act_batch",)))), key)
  got, _ = run(layout.graphdef, moved, *_prompts(layout.rows), layout.put_replicated(key))
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
