"""The LoRA module: a fresh adapter is a no-op, dropout only inside a dropout scope, errors name fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xy_jax.models import lora
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError
from xy_jax.models.presets import get_preset

TOKENS = jnp.asarray(np.random.default_rng(0).integers(4, 2048, size=(2, 16)))


def _model(**kw):
  return CausalLM(get_preset("tiny", **kw), nnx.Rngs(0))


def _logits(model):
  return np.asarray(model(TOKENS)[0])


def test_fresh_adapters_change_nothing_and_trained_ones_do():
  base = _model()
  adapted = _model(lora_rank=4, lora_targets=".*_proj|lm_head")
  nnx.update(adapted, nnx.state(base))  # the base's weights; the adapters stay fresh
  assert np.abs(np.asarray(adapted.lm_head.lora_a[...])).max() > 0
  np.testing.assert_allclose(_logits(adapted), _logits(base), atol=1e-6)
  adapted.lm_head.lora_b[...] = jnp.full_like(adapted.lm_head.lora_b[...], 0.1)
  assert np.abs(_logits(adapted) - _logits(base)).max() > 1e-2


def test_dropout_applies_only_inside_a_scope_and_follows_the_key():
  model = _model(lora_rank=4, lora_dropout=0.5, lora_targets="q_proj|down_proj")
  model.model.layers.mlp.down_proj.lora_b[...] = jnp.full_like(model.model.layers.mlp.down_proj.lora_b[...], 0.2)
  plain = _logits(model)
  np.testing.assert_array_equal(_logits(model), plain)  # no scope: no dropout, deterministic
  with lora.dropout_scope(jax.random.key(1)):
    a = _logits(model)
  with lora.dropout_scope(jax.random.key(1)):
    b = _logits(model)
  with lora.dropout_scope(jax.random.key(2)):
    c = _logits(model)
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - plain).max() > 1e-3 and np.abs(a - c).max() > 1e-3
  assert lora.dropout_key() is None  # the scope is closed again


@pytest.mark.parametrize("kw, message", [
    ({"lora_rank": 4, "lora_targets": "embed_tokens"}, "model.lora_targets='embed_tokens' matches none"),
    ({"lora_rank": 4, "lora_targets": "("}, "not a regular expression"),
    ({"lora_rank": -1}, "model.lora_rank=-1"),
    ({"lora_rank": 4, "lora_dropout": 1.0}, "model.lora_dropout=1.0"),
])
def test_model_config_lora_errors_name_the_field(kw, message):
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    get_preset("tiny").replace(**kw).validate()


def test_merged_weight_folds_the_adapter_for_stacked_and_multi_dim_weights():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)  # [L, N, H, D]: o_proj-like, n_in = 2
  a = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
  b = rng.normal(size=(3, 2, 6)).astype(np.float32)
  got = np.asarray(lora.merged_weight(jnp.asarray(w), jnp.asarray(a), jnp.asarray(b), 2, 0.5))
  want = w + 0.5 * np.einsum("lnhr,lrd->lnhd", a, b)
  np.testing.assert_allclose(got, want, atol=1e-5)
