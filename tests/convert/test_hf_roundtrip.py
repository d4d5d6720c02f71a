"""HF <-> ours, checked against transformers' LlamaForCausalLM (PyTorch, CPU, fp32)."""

import os

import jax
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from tests.hf_helpers import hf_logits, make_hf_model
from xy_jax.convert.hf import export_hf, load_hf
from xy_jax.weights.write import import_hf
from xy_jax.data.tokenizer import DEFAULT_ASSET
from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.weights.load import load_checkpoint
from xy_jax.models.presets import get_preset

QUIET = lambda *_: None  # noqa: E731
TOKENS = np.random.default_rng(0).integers(4, 2048, size=(2, 48))


def _logits(model, tokens):
  return np.asarray(jax.jit(lambda m, t: m(t)[0])(model, tokens))


ROPE_CASES = {
    "default": {},
    "linear": {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
    # max_position_embeddings below the sequence length so dynamic NTK actually rescales.
    "dynamic": {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}, "max_position_embeddings": 32},
    "llama3": {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 16}},
}


@pytest.mark.parametrize("kv_heads,scan", [(1, True), (2, False), (4, True)])
def test_hf_to_ours_logits(tmp_path, one_device_sharding, kv_heads, scan):
  hf = make_hf_model(str(tmp_path), num_key_value_heads=kv_heads)
  cfg, model = load_hf(str(tmp_path), one_device_sharding, log=QUIET, dtype="float32",
                       scan_layers=scan)
  assert cfg.rope_theta == 50000.0 and cfg.num_key_value_heads == kv_heads
  diff = np.abs(_logits(model, TOKENS) - hf_logits(hf, TOKENS)).max()
  assert diff <= 1e-4, diff


@pytest.mark.parametrize("case", list(ROPE_CASES))
def test_rope_scaling_matches_transformers(tmp_path, one_device_sharding, case):
  hf = make_hf_model(str(tmp_path), **ROPE_CASES[case])
  cfg, model = load_hf(str(tmp_path), one_device_sharding, log=QUIET, dtype="float32")
  kind = (cfg.rope_scaling or {}).get("rope_type", "default")
  assert kind == case
  diff = np.abs(_logits(model, TOKENS) - hf_logits(hf, TOKENS)).max()
  assert diff <= 1e-4, diff


def test_ours_to_hf_logits_and_greedy(tmp_path, one_device_sharding):
  cfg = get_preset("tiny", rope_theta=123456.0, pad_token_id=3)
  model = init_model(CausalLM, cfg, one_device_sharding, seed=1)
  out = str(tmp_path / "hf")
  export_hf(model, cfg, out, tokenizer_file=DEFAULT_ASSET, log=QUIET)
  hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
  assert hf.config.rope_parameters["rope_theta"] == 123456.0
  diff = np.abs(_logits(model, TOKENS) - hf_logits(hf, TOKENS)).max()
  assert diff <= 1e-4, diff

  # 32-token greedy continuation, identical token for token.
  prompt = TOKENS[0, :12].tolist()
  ours = Generator(model, eos_id=-1, pad_id=3).generate(
      [prompt], SamplingConfig(greedy=True, max_new_tokens=32))[0].tokens
  with torch.no_grad():
    ref = hf.generate(torch.tensor([prompt]), max_new_tokens=32, do_sample=False, min_new_tokens=32,
                      eos_token_id=None, pad_token_id=3)[0, len(prompt):].tolist()
  assert ours == ref


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_import_export_is_bit_exact(tmp_path, one_device_sharding, dtype):
  src = str(tmp_path / "src")
  make_hf_model(src, dtype=getattr(torch, dtype))
  ckpt = str(tmp_path / "ckpt")
  import_hf(src, ckpt, one_device_sharding, param_dtype=dtype, log=QUIET)
  loaded = load_checkpoint(ckpt, one_device_sharding)
  assert loaded.meta["source_dtype"] == dtype
  out = str(tmp_path / "out")
  export_hf(loaded.model, loaded.cfg, out, dtype=dtype, tokenizer_file=loaded.tokenizer_file,
            max_shard_bytes=64 << 10, log=QUIET)

  def read_all(d):
    tensors = {}
    for f in sorted(os.listdir(d)):
      if f.endswith(".safetensors"):
        with safe_open(os.path.join(d, f), "numpy") as st:
          tensors.update({k: st.get_tensor(k) for k in st.keys()})
    return tensors

  a, b = read_all(src), read_all(out)
  assert set(a) == set(b)
  assert len([f for f in os.listdir(out) if f.endswith(".safetensors")]) > 1  # sharded + index
  for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert a[k].tobytes() == b[k].tobytes(), k


def test_parameter_names_are_hf_names(tmp_path, one_device_sharding):
  """Our parameter tree, with layers unstacked, is exactly transformers' state-dict key set."""
  from xy_jax.convert.hf_weights import tensor_rules
  from xy_jax.models.factory import param_paths

  hf = make_hf_model(str(tmp_path))
  _, model = load_hf(str(tmp_path), one_device_sharding, log=QUIET)
  shapes = {k: v.shape for k, v in param_paths(nnx.state(model)).items()}
  ours = {n for r in tensor_rules(shapes) for n in r.hf_names()}
  assert ours == set(hf.state_dict())
