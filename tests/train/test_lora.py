"""LoRA and QLoRA fine-tuning through `python -m xy_jax.train`, and their exports."""

import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
from flax import nnx

from tests.train.train_helpers import ROOT, env, losses
from xy_jax.weights.load import load_checkpoint

LORA = ("--config.lora.rank=8", "--config.lora.targets=.*_proj|lm_head", "--config.lora.dropout=0.1",
        "--config.optim.lr=1e-2", "--config.optim.schedule=constant", "--config.train.eval_every=15",
        "--config.train.checkpoint_every=15")


def _sft(workdir, base, *overrides, steps=30):
  proc = subprocess.run(
      [sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/sft_tiny.py",
       f"--workdir={workdir}", "--cpu_devices=2", f"--config.data.prepared_dir={workdir}/../sft_data",
       f"--config.init_from_checkpoint={base}", f"--config.train.steps={steps}", *LORA, *overrides],
      capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _evals(workdir, key="eval/loss/sft"):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r[key] for r in map(json.loads, f) if key in r]


def _params(path, sharding):
  return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(load_checkpoint(path, sharding).model)))


def _flat(tree):
  return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _dir_bytes(path):
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, lm_checkpoint):
  workdir = str(tmp_path_factory.mktemp("lora") / "run")
  return workdir, _sft(workdir, lm_checkpoint)


def test_lora_trains_only_the_adapters_and_leaves_the_base_bit_identical(lora_run, lm_checkpoint,
                                                                         one_device_sharding):
  workdir, proc = lora_run
  assert "lora rank 8 on q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head" in proc.stderr
  evals = _evals(workdir)
  assert evals[-1] < evals[0] - 0.3, evals

  base = _flat(_params(lm_checkpoint, one_device_sharding))
  tuned = _flat(_params(f"{workdir}/checkpoints", one_device_sharding))
  adapters = {k for k in tuned if k.endswith("['lora_a']") or k.endswith("['lora_b']")}
  assert set(tuned) - adapters == set(base)
  for k, v in base.items():
    np.testing.assert_array_equal(tuned[k], v, err_msg=k)
  assert all(np.abs(tuned[k]).max() > 0 for k in adapters if k.endswith("['lora_b']"))  # they trained

  # The checkpoint holds the adapters only (and their optimizer state): a small fraction.
  lora_params = _dir_bytes(f"{workdir}/checkpoints/30/params")
  base_params = _dir_bytes(os.path.join(lm_checkpoint, "40", "params"))
  assert lora_params < 0.15 * base_params, (lora_params, base_params)
  meta = json.load(open(f"{workdir}/checkpoints/30/meta/metadata"))
  assert meta["lora_base"]["checkpoint"] == os.path.abspath(lm_checkpoint)
  assert meta["lora_base"]["step"] == 40  # pinned (tests/train/test_base_pinning.py)


def test_lora_resume_is_exact(tmp_path, lora_run, lm_checkpoint):
  straight, _ = lora_run
  workdir = str(tmp_path / "resumed")
  _sft(workdir, lm_checkpoint, steps=15)
  _sft(workdir, lm_checkpoint, steps=30)
  a, b = losses(straight), losses(workdir)
  assert [a[s] for s in range(16, 31) if s in a] == [b[s] for s in range(16, 31) if s in a]


def test_lora_exports_merged_and_as_a_peft_adapter_that_peft_loads(tmp_path, lora_run, lm_checkpoint):
  from peft import PeftModel
  from transformers import AutoModelForCausalLM
  workdir, _ = lora_run

  def export(ckpt, out, *flags):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_hf.py"), f"--checkpoint={ckpt}",
                        f"--out={tmp_path / out}", *flags], capture_output=True, text=True, env=env(),
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p

  export(lm_checkpoint, "base")
  assert "folded the LoRA adapters" in export(f"{workdir}/checkpoints", "merged").stderr
  export(f"{workdir}/checkpoints", "adapter", "--part=adapter")
  assert set(os.listdir(tmp_path / "adapter")) == {"adapter_config.json", "adapter_model.safetensors"}

  tokens = torch.tensor(np.random.default_rng(0).integers(4, 2000, size=(2, 32)))
  with torch.no_grad():
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base", dtype=torch.float32).eval()
    plain = base(tokens).logits.numpy()
    adapted = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()(tokens).logits.numpy()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()(
        tokens).logits.numpy()
  assert np.abs(adapted - plain).max() > 0.1
  np.testing.assert_allclose(merged, adapted, atol=1e-4, rtol=0)


def test_qlora_trains_adapters_on_an_int8_base(tmp_path, lm_checkpoint, one_device_sharding):
  workdir = str(tmp_path / "qlora")
  proc = _sft(workdir, lm_checkpoint, "--config.lora.base_quant=int8", "--config.lora.targets=.*_proj",
              "--config.train.eval_every=5",
              steps=15)
  assert "the rest are frozen in int8" in proc.stderr
  evals = _evals(workdir)
  assert evals[-1] < evals[0] - 0.2, evals
  tuned = nnx.to_pure_dict(nnx.state(load_checkpoint(f"{workdir}/checkpoints", one_device_sharding).model))
  assert tuned["model"]["layers"]["mlp"]["up_proj"]["weight"].dtype == np.int8
  assert np.abs(np.asarray(tuned["model"]["layers"]["mlp"]["up_proj"]["lora_b"])).max() > 0


@pytest.mark.parametrize("overrides, message", [
    ({"stage": "reward"}, "lora.rank: stage 'reward' trains whole models"),
    ({"optim.trainable": "lm_head"}, "optim.trainable: leave empty with lora.rank > 0"),
    ({"lora.targets": "embed_tokens"}, "lora.targets='embed_tokens' matches none of"),
    ({"lora.base_quant": "int3"}, "lora.base_quant: 'int3': none, int8 or int4"),
    ({"lora.rank": 0, "lora.base_quant": "int8"}, "lora.base_quant: set only with lora.rank > 0"),
])
def test_lora_config_errors_name_the_field(overrides, message):
  from tests.train.test_config import load
  from xy_jax.config import validate
  from xy_jax.errors import ConfigError
  cfg = load(os.path.join(ROOT, "configs", "sft_tiny.py"))
  cfg.lora.rank = 4
  for key, value in overrides.items():
    section, _, name = key.rpartition(".")
    (cfg[section] if section else cfg)[name] = value
  from xy_jax.train.task import validate_stage
  with pytest.raises(ConfigError, match=re.escape(message)):
    validate(cfg)
    validate_stage(cfg)  # the stage's own checks (which stages take LoRA) come after the common ones


def test_lora_needs_starting_weights(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/sft_tiny.py", f"--workdir={tmp_path}",
       "--config.lora.rank=4", f"--config.data.prepared_dir={tmp_path}/data"], capture_output=True, text=True,
      env=env(), cwd=ROOT, timeout=300)
  assert proc.returncode != 0 and "lora.rank: LoRA adapts existing weights" in proc.stderr, proc.stderr[-2000:]
