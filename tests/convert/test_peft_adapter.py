"""LoRA adapters out to Hugging Face, checked against `peft` itself (PyTorch, CPU, float32)."""

import json
import os

import jax
import numpy as np
import pytest
import torch
from flax import nnx
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from tests.hf_helpers import make_hf_model
from xy_jax.convert.hf import export_hf, load_hf
from xy_jax.errors import ConversionError
from xy_jax.convert.peft_adapter import ADAPTER_CONFIG, ADAPTER_WEIGHTS, export_adapter, merged
from xy_jax.weights.lora import with_adapters
from xy_jax.models.factory import model_from_values
from xy_jax.models.llama import CausalLM

QUIET = lambda *_: None  # noqa: E731
TOKENS = np.random.default_rng(1).integers(4, 2048, size=(2, 24))


def _lora_model(hf_dir, sharding, targets, quant="none"):
  """Our model of the HF base with random adapters (B random too, so every adapter counts)."""
  cfg, base = load_hf(hf_dir, sharding, log=QUIET, dtype="float32")
  cfg = cfg.replace(lora_rank=4, lora_alpha=8.0, lora_dropout=0.1, lora_targets=targets, quant=quant)
  params = with_adapters(CausalLM, cfg, nnx.to_pure_dict(nnx.state(base)), sharding, seed=3)
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: rng.normal(0, 0.05, x.shape).astype(np.float32) if str(p[-1].key) == "lora_b" else x,
      params)
  return cfg, model_from_values(CausalLM, cfg, sharding, params)


def _ours(model):
  return np.asarray(jax.jit(lambda m, t: m(t)[0])(model, TOKENS))


def _torch(model):
  with torch.no_grad():
    return model(torch.tensor(TOKENS)).logits.numpy()


@pytest.fixture(scope="module")
def hf_base(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("hf_base"))
  make_hf_model(path)
  return path


@pytest.mark.parametrize("targets", ["q_proj|v_proj", ".*_proj|lm_head"])
def test_peft_loads_our_adapter_and_matches_our_model_and_merged_export(tmp_path, hf_base,
                                                                        one_device_sharding, targets):
  cfg, model = _lora_model(hf_base, one_device_sharding, targets)
  ours = _ours(model)

  adapter_dir = str(tmp_path / "adapter")
  export_adapter(model, cfg, adapter_dir, base=hf_base, log=QUIET)
  config = json.load(open(os.path.join(adapter_dir, ADAPTER_CONFIG)))
  assert config["r"] == 4 and config["lora_alpha"] == 8.0 and config["peft_type"] == "LORA"
  with safe_open(os.path.join(adapter_dir, ADAPTER_WEIGHTS), "np") as f:
    names = set(f.keys())
    assert f.get_tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape == (4, 64)
    assert f.get_tensor("base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight").shape == (64, 4)
  per_layer = len(config["target_modules"]) - ("lm_head" in config["target_modules"])
  assert len(names) == 2 * (3 * per_layer + ("lm_head" in config["target_modules"]))

  base = AutoModelForCausalLM.from_pretrained(hf_base, dtype=torch.float32).eval()
  plain = _torch(base)
  peft_model = PeftModel.from_pretrained(base, adapter_dir).eval()
  theirs = _torch(peft_model)
  assert np.abs(theirs - plain).max() > 0.05  # the adapter changes the logits: a real check
  np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)

  merged_dir = str(tmp_path / "merged")
  plain_cfg, folded = merged(model, cfg, one_device_sharding)
  assert plain_cfg.lora_rank == 0
  np.testing.assert_allclose(_ours(folded), ours, atol=1e-4, rtol=0)
  export_hf(folded, plain_cfg, merged_dir, log=QUIET)
  hf_merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
  np.testing.assert_allclose(_torch(hf_merged), theirs, atol=1e-4, rtol=0)


def test_qlora_int8_merged_export_is_the_dequantised_base_plus_the_adapter(hf_base, one_device_sharding):
  cfg, model = _lora_model(hf_base, one_device_sharding, "q_proj|o_proj|down_proj", quant="int8")
  state = nnx.to_pure_dict(nnx.state(model))
  assert state["model"]["layers"]["self_attn"]["q_proj"]["weight"].dtype == np.int8
  plain_cfg, folded = merged(model, cfg, one_device_sharding)
  assert plain_cfg.quant == "none"
  np.testing.assert_allclose(_ours(folded), _ours(model), atol=1e-4, rtol=0)


def test_adapter_export_refuses_a_model_without_adapters(tmp_path, hf_base, one_device_sharding):
  cfg, base = load_hf(hf_base, one_device_sharding, log=QUIET, dtype="float32")
  with pytest.raises(ConversionError, match="no LoRA adapters"):
    export_adapter(base, cfg, str(tmp_path / "a"), log=QUIET)
  assert not os.path.exists(tmp_path / "a")
