"""config.json: what the LLaMA decoder does not implement is refused, naming the field."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, MistralConfig, MistralForCausalLM

from tests.hf_helpers import TINY_HF, hf_logits
from xy_jax.convert.hf import load_hf
from xy_jax.errors import ConversionError
from xy_jax.convert.hf_config import model_config_from_hf
from xy_jax.data.tokenizer import DEFAULT_ASSET

QUIET = lambda *_: None  # noqa: E731


def _config_file(tmp_path, config, drop_architectures=True):
  path = tmp_path / "config.json"
  config.to_json_file(str(path))
  raw = json.loads(path.read_text())
  if drop_architectures:
    raw.pop("architectures", None)
  path.write_text(json.dumps(raw))
  return str(path)


def test_a_mistral_sliding_window_is_refused_even_without_architectures(tmp_path):
  path = _config_file(tmp_path, MistralConfig(**TINY_HF, sliding_window=64))
  with pytest.raises(ConversionError, match=r"config.json: sliding_window=64 is not implemented"):
    model_config_from_hf(path)


@pytest.mark.parametrize("field,value", [
    ("attention_bias", True), ("mlp_bias", True), ("hidden_act", "gelu"),
    ("layer_types", ["sliding_attention", "full_attention", "full_attention"]),
    ("use_qk_norm", True), ("final_logit_softcapping", 30.0),
])
def test_unimplemented_llama_features_are_refused(tmp_path, field, value):
  path = _config_file(tmp_path, LlamaConfig(**TINY_HF))
  raw = json.loads(open(path).read())
  raw[field] = value
  open(path, "w").write(json.dumps(raw))
  with pytest.raises(ConversionError, match=f"config.json: {field}=.* is not implemented"):
    model_config_from_hf(path)


def test_another_model_type_is_refused(tmp_path):
  path = _config_file(tmp_path, LlamaConfig(**TINY_HF))
  raw = dict(json.loads(open(path).read()), model_type="qwen2")
  open(path, "w").write(json.dumps(raw))
  with pytest.raises(ConversionError, match="model_type='qwen2'; only LLaMA-style decoders"):
    model_config_from_hf(path)


def test_a_mistral_without_a_window_imports_exactly(tmp_path, one_device_sharding):
  torch.manual_seed(0)
  model = MistralForCausalLM(MistralConfig(**TINY_HF, sliding_window=None)).eval()
  d = str(tmp_path / "mistral")
  model.save_pretrained(d)
  shutil.copyfile(DEFAULT_ASSET, os.path.join(d, "tokenizer.model"))
  tokens = np.random.default_rng(0).integers(4, 2048, size=(1, 40))
  _, ours = load_hf(d, one_device_sharding, log=QUIET, dtype="float32")
  got = np.asarray(ours(tokens)[0])
  np.testing.assert_allclose(got, hf_logits(model, tokens), atol=1e-4, rtol=1e-4)
