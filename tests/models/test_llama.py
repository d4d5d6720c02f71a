"""The decoder's own invariants: packing, scan/remat equivalence, KV cache, sizes, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xy_jax.models.factory import init_model, param_paths
from xy_jax.models.llama import CausalLM, KVCache
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.models.presets import PRESETS, get_preset
from xy_jax.sharding import LogicalSharding

CFG = get_preset("tiny")
RNG = np.random.default_rng(0)


def _model(cfg=CFG, seed=0):
  return init_model(CausalLM, cfg, LogicalSharding(), seed=seed)


def _forward(model, tokens, positions=None, segment_ids=None):
  return np.asarray(jax.jit(lambda m, *a: m(*a)[0])(model, tokens, positions, segment_ids))


def test_packed_row_equals_documents_one_by_one():
  model = _model()
  docs = [RNG.integers(4, CFG.vocab_size, n) for n in (7, 12, 5)]
  row = np.concatenate(docs + [np.zeros(8, np.int64)])[None]  # 8 pad slots at the end
  seg = np.concatenate([np.full(len(d), i + 1) for i, d in enumerate(docs)] + [np.zeros(8)])[None]
  pos = np.concatenate([np.arange(len(d)) for d in docs] + [np.zeros(8)])[None]
  packed = _forward(model, row, pos.astype(np.int32), seg.astype(np.int32))
  start = 0
  for d in docs:
    alone = _forward(model, d[None])
    np.testing.assert_allclose(packed[0, start:start + len(d)], alone[0], atol=1e-5)
    start += len(d)


def _loss_and_grads(model, tokens):
  graphdef, state = nnx.split(model)

  def loss(state):
    logits, _ = nnx.merge(graphdef, state)(tokens)
    logp = jax.nn.log_softmax(logits[:, :-1])
    return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], -1))

  return jax.jit(jax.value_and_grad(loss))(state)


@pytest.mark.parametrize("scan,remat", [(False, "none"), (True, "full"), (True, "dots"),
                                        (False, "save_qkv_proj")])
def test_scan_and_remat_do_not_change_loss_or_grads(scan, remat):
  tokens = jnp.asarray(RNG.integers(4, CFG.vocab_size, (2, 16)))
  ref_loss, ref_grads = _loss_and_grads(_model(CFG.replace(scan_layers=True, remat_policy="none")),
                                        tokens)
  loss, grads = _loss_and_grads(_model(CFG.replace(scan_layers=scan, remat_policy=remat)), tokens)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("scan", [True, False])
def test_kv_cache_decoding_matches_full_forward(scan):
  cfg = CFG.replace(scan_layers=scan)
  model = _model(cfg)
  tokens = jnp.asarray(RNG.integers(4, CFG.vocab_size, (2, 20)))
  full = _forward(model, tokens)

  @jax.jit
  def incremental(model, tokens):
    cache = KVCache.empty(cfg, 2, 24)
    pos = jnp.broadcast_to(jnp.arange(20, dtype=jnp.int32), (2, 20))
    ones = jnp.ones((2, 20), jnp.int32)
    first, cache = model(tokens[:, :12], pos[:, :12], ones[:, :12], cache)
    outs = [first]
    for t in range(12, 20):
      step, cache = model(tokens[:, t:t + 1], pos[:, t:t + 1], ones[:, t:t + 1], cache)
      outs.append(step)
    return jnp.concatenate(outs, axis=1)

  np.testing.assert_allclose(np.asarray(incremental(model, tokens)), full, atol=1e-5)


def test_bf16_projection_rounds_a_float32_product_on_cpu():
  from xy_jax.models.llama import Weight
  cfg = CFG.replace(dtype="bfloat16")
  assert LogicalSharding().platform == "cpu"
  proj = Weight((64, 96), ("embed", "mlp"), cfg, nnx.Rngs(0))
  assert proj.f32_product
  x = jnp.asarray(RNG.normal(size=(5, 64)), jnp.bfloat16)
  y = proj("BD,DF->BF", x)
  w = proj.weight[...].astype(jnp.bfloat16).astype(jnp.float32)
  want = (x.astype(jnp.float32) @ w).astype(jnp.bfloat16)
  assert y.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(want, np.float32), rtol=1e-2,
                             atol=1e-2)


def test_param_count_matches_the_model():
  cfg = CFG.replace(num_key_value_heads=1)
  model = _model(cfg)
  actual = sum(v[...].size for v in param_paths(nnx.state(model)).values())
  assert cfg.param_count() == actual


def test_flops_per_token_for_xuanyuan_6b():
  cfg = PRESETS["xuanyuan_6b"]
  n = cfg.param_count(include_embeddings=False)
  assert 5.8e9 < cfg.param_count() < 6.4e9  # "6B"
  # 6N (matmul weights) + 6 * L * T * D attention (causal), PaLM's formula.
  expected = 6 * (n - (2 * cfg.num_hidden_layers + 1) * cfg.hidden_size) + 6 * 30 * 2048 * 4096
  assert cfg.flops_per_token(2048) == pytest.approx(expected)


def test_presets_match_the_seeds():
  for name in ("xuanyuan_6b", "xuanyuan_13b", "xuanyuan_70b", "xuanyuan2_70b"):
    assert PRESETS[name].vocab_size == 39438
  assert (PRESETS["xuanyuan_6b"].hidden_size, PRESETS["xuanyuan_6b"].num_hidden_layers) == (4096, 30)
  assert PRESETS["xuanyuan_70b"].num_key_value_heads == 8
  assert PRESETS["xuanyuan2_70b"].max_position_embeddings == 16384


def test_config_errors_name_the_field():
  with pytest.raises(ConfigError, match=r"model.num_attention_heads=6 is not a multiple of model.num_key_value_heads=4"):
    get_preset("tiny", num_attention_heads=6, num_key_value_heads=4)
  with pytest.raises(ConfigError, match=r"model.remat_policy='some'"):
    get_preset("tiny", remat_policy="some")
  with pytest.raises(ConfigError, match=r"model.hidden_sise: unknown model field"):
    ModelConfig.from_dict({**CFG.to_dict(), "hidden_sise": 3})
  with pytest.raises(ConfigError, match=r"rope_scaling.factor: required"):
    get_preset("tiny", rope_scaling={"rope_type": "linear"})
