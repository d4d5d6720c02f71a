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
from xy_jax.models.model_config import ConfigError
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
def test_rollout_layout_generates_the_training_layouts_tokens(trained_layout, sampling):
  cfg, train, model = trained_layout
  layout = rollout_layout("4,1,2", cfg, train, rows_per_step=8)
  graphdef, params = nnx.split(model)
  pure = nnx.to_pure_dict(params)
  moved = layout.reshard(pure)
  leaf = moved["model"]["layers"]["self_attn"]["q_proj"]["weight"]
  assert leaf.sharding.mesh.shape == {"data": 4, "fsdp": 1, "tensor": 2}
  l, d, n, h = leaf.shape
  assert leaf.sharding.shard_shape(leaf.shape) == (l, d, n // 2, h)  # split over tensor only
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


def test_auto_layout_is_tensor_parallel_within_a_host_and_sized_to_the_chip():
  big = get_preset("xuanyuan2_70b")
  assert auto_shape(big, 128, None) == (16, 1, 8)  # the data 16 x tensor 8
  assert auto_shape(big, 128, 95 * 2**30) == (32, 1, 4)  # 129 GiB of bf16 weights: 4 chips hold them at half HBM
  assert auto_shape(get_preset("tiny"), 8, None) == (4, 1, 2)  # tiny: 2 kv heads


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


def test_bfloat16_rollouts_take_bfloat16_weights_and_the_same_tokens():
  cfg = get_preset("tiny", dtype="bfloat16")  # float32 master weights, bfloat16 compute
  train = LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}, jax.devices()[:8]))
  graphdef, params = nnx.split(init_model(CausalLM, cfg, train, seed=1))
  pure = nnx.to_pure_dict(params)
  layout = rollout_layout("auto", cfg, train, rows_per_step=8)
  moved = layout.reshard(pure)
  assert moved["lm_head"]["weight"].dtype == jnp.bfloat16 and pure["lm_head"]["weight"].dtype == jnp.float32
  sampling = SamplingConfig(greedy=True, max_new_tokens=12)
  run = jax.jit(lambda g, p, t, v, key: decode(nnx.merge(g, p), t, v, key, sampling, 2, 0), static_argnums=0)
  key = jax.random.key(0)
  want, _ = run(graphdef, pure, *_prompts(jax.sharding.NamedSharding(train.mesh, train.spec(("act_batch",)))), key)
  got, _ = run(layout.graphdef, moved, *_prompts(layout.rows), layout.put_replicated(key))
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
