"""Quantised HF exports load in transformers as they are and give our own quantised model's logits.

GPTQ v1 (4-bit from int4, 8-bit from int8) goes through gptqmodel's torch kernel, bitsandbytes
LLM.int8 through its CPU backend, both in tests/quant/release_env.py's venv. The reference is our
quantised model's forward in float32 (its integer weights dequantised). The model is the tiny
preset at random init with its projections scaled up 4x, so that logits are peaked and argmax
comparisons mean something.
"""

import json
import math
import os
import shutil
import subprocess
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from tests.quant import release_env
from tests.train.train_helpers import ROOT
from xy_jax.convert.hf_quant import check_format, export_quantized
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConversionError
from xy_jax.models.factory import init_model, param_paths
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.quant.quantize_model import quantize_model

GROUP = 32
# max |HF - ours| over the logits as a fraction of max |ours|, the share of positions whose argmax
# agrees, and the perplexity change, per export. HF computes in float16 (GPTQ) and with int8
# activations (LLM.int8); measured: GPTQ int4 2.5e-3 and 100% agreement, GPTQ int8 2.1e-3 and 100%,
# bnb int8 4.3e-2 and 94%.
LOGIT_BOUND = {"gptq int4": 4e-3, "gptq int8": 4e-3, "bnb int8": 6e-2}
ARGMAX_BOUND = {"gptq int4": 0.96, "gptq int8": 0.96, "bnb int8": 0.9}
PPL_BOUND = {"gptq int4": 0.005, "gptq int8": 0.005, "bnb int8": 0.03}
LOADER = os.path.join(ROOT, "tests", "quant", "hf_release_logits.py")


@pytest.fixture(scope="module")
def float_lm(one_device_sharding):
  cfg = get_preset("tiny").replace(dtype="float32", param_dtype="float32")
  model = init_model(CausalLM, cfg, one_device_sharding, seed=0)
  for name, v in param_paths(nnx.state(model)).items():
    if "norm" not in name:
      v.set_value(v[...] * 4)
  return SimpleNamespace(model=model, cfg=cfg, tokenizer_file=load_tokenizer(None).model_file)


@pytest.fixture(scope="module")
def tokens(float_lm):
  return np.random.RandomState(0).randint(3, float_lm.cfg.vocab_size, (4, 48)).astype(np.int32)


@pytest.fixture(scope="module")
def loader_python():
  return release_env.python_bin(release_env.build())


def _export(float_lm, sharding, mode, out, fmt=None):
  q = quantize_model(float_lm.model, float_lm.cfg, mode, sharding, group_size=GROUP)
  export_quantized(q.model, q.cfg, out, fmt, tokenizer_file=float_lm.tokenizer_file, log=lambda _: None)
  return q


def _hf_logits(python, model_dirs, tokens, tmp_path):
  """[(logits, module kinds line)] for each of `model_dirs`, all loaded in one process."""
  np.save(tmp_path / "tokens.npy", tokens)
  outs = [str(tmp_path / f"hf{i}.npy") for i in range(len(model_dirs))]
  pairs = [a for d, o in zip(model_dirs, outs) for a in (d, o)]
  env = dict(os.environ, GPTQMODEL_CPU_WORKERS="2", CUDA_VISIBLE_DEVICES="")
  proc = subprocess.run([python, LOADER, pairs[0], str(tmp_path / "tokens.npy"), *pairs[1:]],
                        capture_output=True, text=True, env=env, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  kinds = [line for line in proc.stdout.splitlines() if line.startswith("up_proj: ")]
  assert len(kinds) == len(model_dirs), proc.stdout[-3000:]
  return [(np.load(o), k) for o, k in zip(outs, kinds)]


def _with_shifted_zeros(out, word):
  """A copy of the GPTQ export `out` whose qzeros all hold `word` (a negative control)."""
  bad = out + "_shifted_zeros"
  shutil.copytree(out, bad)
  for fname, shard in _shards(bad).items():
    for k in shard:
      if k.endswith(".qzeros"):
        shard[k] = np.full_like(shard[k], np.uint32(word).view(np.int32))
    save_file(shard, os.path.join(bad, fname), metadata={"format": "pt"})
  return bad


def _perplexity(logits, tokens):
  logp = logits[:, :-1] - np.log(np.exp(logits[:, :-1] - logits[:, :-1].max(-1, keepdims=True)).sum(
      -1, keepdims=True)) - logits[:, :-1].max(-1, keepdims=True)
  nll = -np.take_along_axis(logp, tokens[:, 1:, None], -1).mean()
  return math.exp(nll)


def _compare(ours, hf, tokens, export):
  scale = np.abs(ours).max()
  err = np.abs(hf - ours).max() / scale
  ppl_rise = abs(_perplexity(hf, tokens) / _perplexity(ours, tokens) - 1)
  agree = float((hf.argmax(-1) == ours.argmax(-1)).mean())
  ok = err < LOGIT_BOUND[export] and agree >= ARGMAX_BOUND[export] and ppl_rise < PPL_BOUND[export]
  return ok, f"max|diff|/max|logit| {err:.2e}, perplexity change {ppl_rise:.2e}, argmax agreement {agree:.3f}"


def _shards(model_dir):
  index = json.load(open(os.path.join(model_dir, "model.safetensors.index.json")))["weight_map"]
  return {f: load_file(os.path.join(model_dir, f)) for f in set(index.values())}


@pytest.mark.heavy
def test_gptq_export_loads_in_transformers(tmp_path, float_lm, one_device_sharding, tokens, loader_python):
  out = str(tmp_path / "gptq")
  q = _export(float_lm, one_device_sharding, "int4", out)
  cfg = json.load(open(os.path.join(out, "config.json")))
  assert cfg["quantization_config"] == {"quant_method": "gptq", "bits": 4, "group_size": GROUP,
                                        "desc_act": False, "sym": True, "checkpoint_format": "gptq",
                                        "lm_head": False}
  assert json.load(open(os.path.join(out, "generation_config.json")))["temperature"] == 0.7
  assert os.path.isfile(os.path.join(out, "tokenizer.model"))

  tensors = {k: v for shard in _shards(out).values() for k, v in shard.items()}
  d, f = q.cfg.hidden_size, q.cfg.intermediate_size
  p = "model.layers.0.mlp.down_proj"
  assert tensors[f"{p}.qweight"].dtype == np.int32 and tensors[f"{p}.qweight"].shape == (f // 8, d)
  assert tensors[f"{p}.qzeros"].shape == (f // GROUP, d // 8)
  assert (tensors[f"{p}.qzeros"].view(np.uint32) == 0x77777777).all()
  assert tensors[f"{p}.scales"].dtype == np.float16 and tensors[f"{p}.scales"].shape == (f // GROUP, d)
  np.testing.assert_array_equal(tensors[f"{p}.g_idx"], np.arange(f) // GROUP)
  assert f"{p}.weight" not in tensors
  assert tensors["lm_head.weight"].dtype == np.float16 and tensors["lm_head.weight"].shape == (q.cfg.vocab_size, d)
  assert tensors["model.embed_tokens.weight"].dtype == np.float16
  # Nibble j of qweight row i is input row 8i+j, stored as code + 8.
  ours = np.asarray(q.model.model.layers.mlp.down_proj.weight[...][0]).astype(np.int32)
  unpacked = (tensors[f"{p}.qweight"].view(np.uint32)[:, None, :] >> (4 * np.arange(8, dtype=np.uint32))[None, :, None]) & 15
  np.testing.assert_array_equal(unpacked.reshape(f, d).astype(np.int32) - 8, ours)

  reference = np.asarray(q.model(jnp.asarray(tokens))[0], np.float32)
  # Negative control: zeros shifted by one code (the v2 zero under the v1 label) must be caught.
  bad_dir = _with_shifted_zeros(out, 0x88888888)
  (hf, kinds), (bad, _) = _hf_logits(loader_python, [out, bad_dir], tokens, tmp_path)
  assert "TorchLinear" in kinds and "lm_head: Linear" in kinds, kinds
  ok, summary = _compare(reference, hf, tokens, "gptq int4")
  print(f"gptq int4: {summary}")
  assert ok, summary
  ok, summary = _compare(reference, bad, tokens, "gptq int4")
  assert not ok, f"shifted qzeros went unnoticed: {summary}"


@pytest.mark.heavy
def test_bnb_int8_export_loads_in_transformers(tmp_path, float_lm, one_device_sharding, tokens, loader_python):
  out = str(tmp_path / "bnb")
  q = _export(float_lm, one_device_sharding, "int8", out)
  cfg = json.load(open(os.path.join(out, "config.json")))
  assert cfg["quantization_config"]["quant_method"] == "bitsandbytes"
  assert cfg["quantization_config"]["load_in_8bit"] is True

  tensors = {k: v for shard in _shards(out).values() for k, v in shard.items()}
  d, f = q.cfg.hidden_size, q.cfg.intermediate_size
  p = "model.layers.1.mlp.up_proj"
  assert tensors[f"{p}.weight"].dtype == np.int8 and tensors[f"{p}.weight"].shape == (f, d)
  assert tensors[f"{p}.SCB"].dtype == np.float32 and tensors[f"{p}.SCB"].shape == (f,)
  # Our int8 is per output channel symmetric absmax: SCB is each HF row's float absmax.
  float_w = np.asarray(float_lm.model.model.layers.mlp.up_proj.weight[...][1])  # [in, out]
  np.testing.assert_allclose(tensors[f"{p}.SCB"], np.abs(float_w).max(0), rtol=1e-6)
  assert np.abs(tensors[f"{p}.weight"]).max(1).min() == 127

  reference = np.asarray(q.model(jnp.asarray(tokens))[0], np.float32)
  [(hf, kinds)] = _hf_logits(loader_python, [out], tokens, tmp_path)
  assert "Linear8bitLt" in kinds, kinds
  ok, summary = _compare(reference, hf, tokens, "bnb int8")
  print(f"bnb int8: {summary}")
  assert ok, summary


def test_format_follows_the_weight_width():
  check_format("gptq", "int4")
  check_format("gptq", "int8")
  check_format("bnb", "int8")
  with pytest.raises(ConversionError) as err:
    check_format("bnb", "int4")
  assert str(err.value) == "--format=bnb needs an int8 model, this one is int4: use --format=gptq"


@pytest.mark.heavy
def test_gptq_int8_export_loads_in_transformers(tmp_path, float_lm, one_device_sharding, tokens, loader_python):
  out = str(tmp_path / "gptq8")
  q = _export(float_lm, one_device_sharding, "int8", out, "gptq")
  cfg = json.load(open(os.path.join(out, "config.json")))
  # int8 is per output channel: one group over all rows, GPTQ's group_size -1.
  assert cfg["quantization_config"] == {"quant_method": "gptq", "bits": 8, "group_size": -1,
                                        "desc_act": False, "sym": True, "checkpoint_format": "gptq",
                                        "lm_head": False}

  tensors = {k: v for shard in _shards(out).values() for k, v in shard.items()}
  d, f = q.cfg.hidden_size, q.cfg.intermediate_size
  p = "model.layers.1.mlp.down_proj"
  assert tensors[f"{p}.qweight"].dtype == np.int32 and tensors[f"{p}.qweight"].shape == (f // 4, d)
  assert tensors[f"{p}.qzeros"].dtype == np.int32 and tensors[f"{p}.qzeros"].shape == (1, d // 4)
  # v1 stores zero - 1: symmetric 8-bit has zero 128, so every byte is 127.
  assert (tensors[f"{p}.qzeros"].view(np.uint32) == 0x7F7F7F7F).all()
  assert tensors[f"{p}.scales"].dtype == np.float16 and tensors[f"{p}.scales"].shape == (1, d)
  assert tensors[f"{p}.g_idx"].dtype == np.int32
  np.testing.assert_array_equal(tensors[f"{p}.g_idx"], np.zeros(f))
  assert f"{p}.weight" not in tensors and tensors["lm_head.weight"].dtype == np.float16
  # Byte j of qweight row i is input row 4i+j, stored as code + 128; the scales are ours.
  ours = np.asarray(q.model.model.layers.mlp.down_proj.weight[...][1]).astype(np.int32)
  unpacked = (tensors[f"{p}.qweight"].view(np.uint32)[:, None, :] >> (8 * np.arange(4, dtype=np.uint32))[None, :, None]) & 255
  np.testing.assert_array_equal(unpacked.reshape(f, d).astype(np.int32) - 128, ours)
  assert np.abs(ours).max() == 127
  our_scale = np.asarray(q.model.model.layers.mlp.down_proj.weight_scale[...][1], np.float32)
  np.testing.assert_array_equal(tensors[f"{p}.scales"], our_scale.astype(np.float16))

  reference = np.asarray(q.model(jnp.asarray(tokens))[0], np.float32)
  # Negative control: zeros shifted by one code (the v2 zero under the v1 label) must be caught.
  bad_dir = _with_shifted_zeros(out, 0x80808080)
  (hf, kinds), (bad, _) = _hf_logits(loader_python, [out, bad_dir], tokens, tmp_path)
  assert "TorchLinear" in kinds and "lm_head: Linear" in kinds, kinds
  ok, summary = _compare(reference, hf, tokens, "gptq int8")
  print(f"gptq int8: {summary}")
  assert ok, summary
  ok, summary = _compare(reference, bad, tokens, "gptq int8")
  print(f"gptq int8, shifted qzeros: {summary}")
  assert not ok, f"shifted qzeros went unnoticed: {summary}"
