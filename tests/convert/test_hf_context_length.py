"""The context length in config.json: HF's max_position_embeddings under linear or dynamic RoPE
scaling is the length before it (vLLM allows it times the factor), ours the length after (the
Generator's limit). The trip through vLLM itself: tests/quant/test_vllm_serving.py."""

import json

import numpy as np
import pytest
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from xy_jax.convert.hf_config import model_config_from_hf, model_config_to_hf
from xy_jax.errors import ConversionError
from xy_jax.models.presets import get_preset
from xy_jax.models.rope import inverse_frequencies

LINEAR4 = {"rope_type": "linear", "factor": 4.0}


def _to_hf(cfg, tmp_path):
  raw = model_config_to_hf(cfg, "causal_lm", "bfloat16")
  path = tmp_path / "config.json"
  path.write_text(json.dumps(raw))
  return raw, str(path)


def _hf_file(tmp_path, **fields):
  raw = dict(model_config_to_hf(get_preset("tiny"), "causal_lm", "float32"), **fields)
  path = tmp_path / "config.json"
  path.write_text(json.dumps(raw))
  return raw, str(path)


def test_xuanyuan2_trained_at_16k_with_linear_x4_exports_4096(tmp_path):
  cfg = get_preset("xuanyuan2_70b")
  assert cfg.max_position_embeddings == 16384 and cfg.rope_scaling == LINEAR4
  raw, path = _to_hf(cfg, tmp_path)
  assert raw["max_position_embeddings"] == 4096 and raw["rope_scaling"] == LINEAR4
  assert model_config_from_hf(path) == cfg


@pytest.mark.parametrize("scaling,ours,hf", [
    (None, 512, 512),
    ({"rope_type": "linear", "factor": 2.0}, 512, 256),
    ({"rope_type": "dynamic", "factor": 4.0}, 512, 128),
    ({"type": "linear", "factor": 1.5}, 768, 512),
    ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 64}, 512, 512),
])
def test_ours_to_hf_to_ours(tmp_path, scaling, ours, hf):
  cfg = get_preset("tiny", rope_scaling=scaling, max_position_embeddings=ours)
  raw, path = _to_hf(cfg, tmp_path)
  assert raw["max_position_embeddings"] == hf
  back = model_config_from_hf(path)
  assert back.max_position_embeddings == ours
  if scaling:
    assert back.rope_scaling == {"rope_type": scaling.get("type", scaling.get("rope_type")),
                                 **{k: v for k, v in scaling.items() if k not in ("type", "rope_type")}}
  assert back.replace(rope_scaling=cfg.rope_scaling, **cfg.numerics()) == cfg


@pytest.mark.parametrize("kind,factor,hf_len", [
    ("linear", 4.0, 4096), ("dynamic", 2.0, 32), ("linear", 1.3, 4097), ("dynamic", 3, 100),
    ("linear", 1.1, 10),
])
def test_hf_to_ours_to_hf(tmp_path, kind, factor, hf_len):
  """What vLLM allows (int(max_position_embeddings * factor)) is our length, and it maps back."""
  raw, path = _hf_file(tmp_path, max_position_embeddings=hf_len,
                       rope_scaling={"rope_type": kind, "factor": factor})
  cfg = model_config_from_hf(path)
  assert cfg.max_position_embeddings == int(hf_len * factor)
  assert model_config_to_hf(cfg, "causal_lm", "float32") == raw


def test_transformers_5_rope_parameters_layout(tmp_path):
  _, path = _hf_file(tmp_path, max_position_embeddings=4096, rope_scaling=None,
                     rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 5e5})
  cfg = model_config_from_hf(path)
  assert (cfg.max_position_embeddings, cfg.rope_scaling, cfg.rope_theta) == (16384, LINEAR4, 5e5)


def test_llama3_without_its_original_length_reads_as_transformers_does(tmp_path):
  scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
  _, path = _hf_file(tmp_path, max_position_embeddings=1024, rope_scaling=scaling)
  cfg = model_config_from_hf(path)
  assert cfg.max_position_embeddings == 1024
  assert cfg.rope_scaling["original_max_position_embeddings"] == 1024
  ours = get_preset("tiny", rope_scaling=scaling)
  assert model_config_to_hf(ours, "causal_lm", "float32")["rope_scaling"][
      "original_max_position_embeddings"] == 8192  # what rope.py uses when it is missing


def test_a_length_no_whole_hf_length_gives_is_refused(tmp_path):
  cfg = get_preset("tiny", rope_scaling={"rope_type": "dynamic", "factor": 3.0}, max_position_embeddings=512)
  with pytest.raises(ConversionError, match=r"max_position_embeddings=512: no whole length times "
                                            r"rope_scaling.factor=3.0 gives it"):
    model_config_to_hf(cfg, "causal_lm", "float32")


def test_an_hf_length_that_does_not_map_back_is_refused(tmp_path):
  _, path = _hf_file(tmp_path, max_position_embeddings=101, rope_scaling={"rope_type": "linear", "factor": 0.3})
  with pytest.raises(ConversionError, match=r"config.json: max_position_embeddings=101 with "
                                            r"rope_scaling.factor=0.3 gives .* does not map back"):
    model_config_from_hf(path)


@pytest.mark.parametrize("seq_len", [64, 128, 129, 300, 512])
def test_dynamic_ntk_of_the_export_is_transformers(tmp_path, seq_len):
  """transformers rescales past the exported max_position_embeddings (128 = 512 / 4), as we do."""
  cfg = get_preset("tiny", rope_scaling={"rope_type": "dynamic", "factor": 4.0})
  raw, _ = _to_hf(cfg, tmp_path)
  hf_cfg = LlamaConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")})
  want, _ = ROPE_INIT_FUNCTIONS["dynamic"](hf_cfg, torch.device("cpu"), seq_len=torch.tensor(seq_len))
  got = np.asarray(inverse_frequencies(cfg, seq_len))
  np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
  if seq_len <= 128:
    np.testing.assert_allclose(got, np.asarray(inverse_frequencies(cfg.replace(rope_scaling=None))), rtol=1e-6)
