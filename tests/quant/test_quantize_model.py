"""Quantised models: logits close to the bfloat16 model, sharding by the rules, checkpoint round trip."""

import math
import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tests.train.train_helpers import ROOT, env
from xy_jax.data import synthetic_text
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.models.factory import param_paths
from xy_jax.weights.load import load_checkpoint
from xy_jax.quant.quantize_model import param_bytes, quantize_model

# Stated bounds on the 40-step tiny LM (measured: see docs/performance.md for the demo model).
LOGIT_RMS_BOUND = {"int8": 0.02, "int4": 0.12}  # rms(q - bf16) / rms(bf16)
PPL_RISE_BOUND = {"int8": 0.01, "int4": 0.05}


def _rel_rms(a, b):
  return float(jnp.sqrt(jnp.mean((a - b) ** 2)) / jnp.sqrt(jnp.mean(b ** 2)))


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantised_close_to_bfloat16(mode, float_lm, sharding):
  q = quantize_model(float_lm.model, float_lm.cfg, mode, sharding, group_size=32)
  tok = load_tokenizer(None)
  docs = tok.encode_batch(synthetic_text.corpus_lines(64, seed=7), bos=True)
  width = max(len(d) for d in docs[:8])
  batch = np.full((8, width), tok.pad_id, np.int32)
  for i, d in enumerate(docs[:8]):
    batch[i, :len(d)] = d
  ref, _ = float_lm.model(jnp.asarray(batch))
  out, _ = q.model(jnp.asarray(batch))
  assert _rel_rms(out, ref) < LOGIT_RMS_BOUND[mode]

  def ppl(model):
    nll, n = PerplexityEvaluator(model, tok.pad_id).evaluate(docs)
    return math.exp(nll / n)
  assert ppl(q.model) / ppl(float_lm.model) - 1 < PPL_RISE_BOUND[mode]

  # Integer storage, sharded by the same rules as the float weights; embeddings stay float.
  flat = param_paths(nnx.state(q.model))
  w, s = flat["model.layers.mlp.up_proj.weight"][...], flat["model.layers.mlp.up_proj.weight_scale"][...]
  assert w.dtype == (jnp.int8 if mode == "int8" else jnp.int4)
  assert s.shape == ((2, 1, 352) if mode == "int8" else (2, 4, 352))
  float_w = param_paths(nnx.state(float_lm.model))["model.layers.mlp.up_proj.weight"][...]
  assert w.sharding.spec == float_w.sharding.spec
  assert flat["model.embed_tokens.weight"][...].dtype == jnp.float32
  assert flat["lm_head.weight"][...].dtype == jnp.float32 and "lm_head.weight_scale" not in flat
  # The projections shrink to a quarter (int8) or an eighth (int4) plus their scales; nothing else.
  floats = param_paths(nnx.state(float_lm.model))
  projections = sum(v[...].nbytes for k, v in floats.items() if k.endswith("_proj.weight"))
  saved = param_bytes(float_lm.model) - param_bytes(q.model)
  assert saved > projections * (0.7 if mode == "int8" else 0.8)


def _quantize_tool(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "quantize.py"), *args],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)


def test_quantize_tool_checkpoint_round_trip(tmp_path, lm_checkpoint, float_lm, sharding):
  out = str(tmp_path / "int4")
  proc = _quantize_tool(f"--checkpoint={lm_checkpoint}", "--mode=int4", "--group_size=32",
                        f"--out={out}", "--eval_text=data/pretrain/general.txt", "--max_docs=64")
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines() if ": " in line)
  assert float(lines["perplexity rise"].rstrip("%")) < 5.0
  assert float(lines["perplexity int4"]) > 1.0

  loaded = load_checkpoint(out, sharding)
  assert loaded.cfg.quant == "int4" and loaded.cfg.quant_group_size == 32
  assert os.path.isfile(os.path.join(out, "tokenizer.model"))
  again = quantize_model(float_lm.model, float_lm.cfg, "int4", sharding, group_size=32)
  a, b = param_paths(nnx.state(loaded.model)), param_paths(nnx.state(again.model))
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k][...].astype(jnp.float32)),
                                  np.asarray(b[k][...].astype(jnp.float32)), err_msg=k)
  tokens = jnp.asarray(np.arange(1, 33, dtype=np.int32)[None].repeat(8, 0))
  np.testing.assert_array_equal(np.asarray(loaded.model(tokens)[0]), np.asarray(again.model(tokens)[0]))


def test_quantize_tool_bad_group_is_one_line(tmp_path, lm_checkpoint):
  proc = _quantize_tool(f"--checkpoint={lm_checkpoint}", "--mode=int4", "--group_size=128",
                        f"--out={tmp_path / 'x'}")
  assert proc.returncode == 2
  # The tool's own flag, with a size that works for every projection (32 on the tiny model).
  assert proc.stderr.strip().splitlines()[-1].startswith("error: --group_size=128 does not divide")
  assert proc.stderr.strip().endswith("use 32, which divides them all: --group_size=32")
  assert not os.path.exists(tmp_path / "x")


def test_quantised_model_does_not_export_to_hf(tmp_path, float_lm, sharding):
  from xy_jax.convert.hf import export_hf
  from xy_jax.errors import ConversionError
  q = quantize_model(float_lm.model, float_lm.cfg, "int8", sharding)
  with pytest.raises(ConversionError, match="model.quant='int8': export the float checkpoint"):
    export_hf(q.model, q.cfg, str(tmp_path / "hf"), tokenizer_file=float_lm.tokenizer_file)
  assert not os.path.exists(tmp_path / "hf")


def test_export_hf_writes_a_quantised_checkpoint_in_the_format_asked(tmp_path, lm_checkpoint):
  ckpt = str(tmp_path / "int8")
  proc = _quantize_tool(f"--checkpoint={lm_checkpoint}", "--bits=8", f"--out={ckpt}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = str(tmp_path / "gptq8")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_hf.py"), f"--checkpoint={ckpt}",
                         f"--out={out}", "--format=gptq"], capture_output=True, text=True, env=env(), cwd=ROOT,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  config = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
  assert (config["quant_method"], config["bits"], config["group_size"]) == ("gptq", 8, -1)
