"""Meshes, the rules table and divisibility errors on 8 fake CPU devices."""

import jax
import numpy as np
import pytest
from flax import nnx

from xy_jax.models.factory import abstract_model, init_model, param_paths, state_shardings
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.sharding import (LogicalSharding, ShardingError, logical_to_spec, make_mesh,
                             resolve_mesh_shape)

# 4 kv heads so tensor=4 divides them; GQA still groups 2 query heads per kv head.
CFG = get_preset("tiny", num_attention_heads=8, num_key_value_heads=4)
TOKENS = np.random.default_rng(0).integers(0, CFG.vocab_size, size=(8, 32))
MESHES = [(1, 1, 1), (8, 1, 1), (2, 2, 2), (1, 2, 4)]


def _mesh(shape):
  n = int(np.prod(shape))
  return make_mesh(dict(zip(("data", "fsdp", "tensor"), shape)), jax.devices()[:n])


@pytest.fixture(scope="module")
def reference_logits():
  model = init_model(CausalLM, CFG, LogicalSharding(_mesh((1, 1, 1))), seed=3)
  return np.asarray(jax.jit(lambda m, t: m(t)[0])(model, TOKENS))


@pytest.mark.parametrize("shape", MESHES, ids=lambda s: "x".join(map(str, s)))
def test_same_logits_on_every_mesh(shape, reference_logits):
  mesh = _mesh(shape)
  model = init_model(CausalLM, CFG, LogicalSharding(mesh), seed=3)
  logits = np.asarray(jax.jit(lambda m, t: m(t)[0])(model, TOKENS))
  np.testing.assert_allclose(logits, reference_logits, atol=2e-5, rtol=1e-5)

  # Every parameter sits exactly where the rules table says.
  sharding = LogicalSharding(mesh)
  for name, var in param_paths(nnx.state(model)).items():
    expected = logical_to_spec(var.get_metadata()["logical_axes"], sharding.rules, mesh)
    actual = var[...].sharding
    assert actual.mesh.shape == mesh.shape, name
    assert actual.spec == expected, (name, actual.spec, expected)


def test_rules_resolve_as_documented():
  mesh = _mesh((2, 2, 2))
  assert logical_to_spec(("layers", "embed", "q_heads", "head_dim"), mesh=mesh) == \
      jax.sharding.PartitionSpec(None, "fsdp", "tensor", None)
  assert logical_to_spec(("act_batch", "act_length", "act_embed"), mesh=mesh) == \
      jax.sharding.PartitionSpec(("data", "fsdp"), None, None)


def test_indivisible_tensor_axis_is_one_clear_line():
  mesh = _mesh((1, 2, 4))  # tensor=4 but only 2 kv heads
  cfg = CFG.replace(num_key_value_heads=2)
  graphdef, abs_state = abstract_model(CausalLM, cfg, LogicalSharding(mesh))
  with pytest.raises(ShardingError) as e:
    state_shardings(abs_state, LogicalSharding(mesh))
  msg = str(e.value)
  assert "\n" not in msg
  assert "k_proj.weight" in msg and "kv_heads=2" in msg and "'tensor'=4" in msg


def test_mesh_shape_fill_and_errors():
  assert resolve_mesh_shape({"data": -1, "fsdp": 2, "tensor": 2}, 8) == (2, 2, 2)
  assert resolve_mesh_shape({"data": 1, "fsdp": -1, "tensor": 1}, 8) == (1, 8, 1)
  with pytest.raises(ShardingError, match="mesh.fsdp=-1"):
    resolve_mesh_shape({"data": -1, "fsdp": -1}, 8)
  with pytest.raises(ShardingError, match="needs 4 devices but 8"):
    resolve_mesh_shape({"data": 2, "fsdp": 2, "tensor": 1}, 8)
  with pytest.raises(ShardingError, match="not divisible"):
    resolve_mesh_shape({"data": -1, "fsdp": 3}, 8)


def test_hybrid_mesh_needs_as_many_granules_as_dcn_data():
  # One process here; the two-process run (multi-host tests) builds the real hybrid mesh.
  with pytest.raises(ShardingError, match="mesh.dcn_data=2: the devices span 1 processes"):
    make_mesh({"data": 4, "fsdp": 2, "tensor": 1, "dcn_data": 2}, jax.devices())
