"""Runs that stand on another run's weights (a LoRA base, a DPO reference, PPO's four sources) pin
the exact step and a digest of it: readers and resumes take that step, and a base that is gone or
changed stops them with one line naming it. QLoRA's int4 group size is the config's."""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from tests.train.train_helpers import ROOT, env, losses
from xy_jax.weights import layout, pins, select
from xy_jax.weights.load import load_checkpoint

LORA = ("--config.lora.rank=4", "--config.lora.targets=q_proj|v_proj", "--config.optim.lr=1e-2",
        "--config.optim.schedule=constant", "--config.optim.warmup_steps=0", "--config.train.eval_every=100",
        "--config.train.checkpoint_every=2")


def _train(config, workdir, *overrides, ok=True):
  proc = subprocess.run([sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/{config}",
                         f"--workdir={workdir}", "--cpu_devices=2", *overrides],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
  return proc


def _sft(workdir, base, steps, *overrides, ok=True):
  return _train("sft_tiny.py", workdir, f"--config.data.prepared_dir={os.path.dirname(workdir)}/sft_data",
                f"--config.init_from_checkpoint={base}", f"--config.train.steps={steps}", *LORA, *overrides,
                ok=ok)


def _copy_base(lm_checkpoint, dst):
  shutil.copytree(lm_checkpoint, dst)
  return dst


def _stored_params(path, step):
  with ocp.CheckpointManager(path) as mngr:
    return jax.tree.map(np.asarray, mngr.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore()))["params"])


def _train_base_on(base):
  """The base run goes on: a newer step with other weights (what two more steps would leave)."""
  step = layout.latest_step(base)
  params = jax.tree.map(lambda a: a + np.asarray(0.05, a.dtype), _stored_params(base, step))
  layout.save_model(base, params, layout.load_meta(base, step), step + 2)
  return step + 2


def _flat(tree):
  return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _model_params(path, sharding, **kw):
  return _flat(nnx.to_pure_dict(nnx.state(load_checkpoint(path, sharding, **kw).model)))


@pytest.fixture(scope="module")
def base(tmp_path_factory, lm_checkpoint):
  return _copy_base(lm_checkpoint, str(tmp_path_factory.mktemp("pinning") / "base"))


@pytest.fixture(scope="module")
def lora(base):
  """A LoRA run of 4 steps on `base`, before the base moves on."""
  workdir = os.path.join(os.path.dirname(base), "lora")
  _sft(workdir, base, 4)
  return workdir


def test_a_lora_checkpoint_records_its_base_step_and_digest(lora, base):
  meta = json.load(open(f"{lora}/checkpoints/4/meta/metadata"))
  pinned = meta["lora_base"]
  assert pinned["checkpoint"] == os.path.abspath(base) and pinned["step"] == 40
  assert pinned["digest"] == pins.step_digest(base, 40)
  assert meta["stage_meta"]["pins"]["init_from_checkpoint"] == {k: pinned[k] for k in ("checkpoint", "step", "digest")}


def test_readers_take_the_pinned_base_step_after_the_base_trains_on(lora, base, one_device_sharding):
  before = _stored_params(base, 40)
  newer = _train_base_on(base) if layout.latest_step(base) == 40 else layout.latest_step(base)
  tuned = _model_params(f"{lora}/checkpoints", one_device_sharding)
  for k, v in _flat(before).items():
    np.testing.assert_array_equal(tuned[k], v, err_msg=k)
  assert not np.array_equal(tuned["['lm_head']['weight']"], _flat(_stored_params(base, newer))["['lm_head']['weight']"])


def test_a_resume_continues_on_the_pinned_base_step(tmp_path, lora, lm_checkpoint):
  other_base = _copy_base(lm_checkpoint, str(tmp_path / "base"))
  workdir = str(tmp_path / "split")
  _sft(workdir, other_base, 2)
  _train_base_on(other_base)
  proc = _sft(workdir, other_base, 4)
  assert f"init_from_checkpoint: step 40 of {other_base}, pinned when this run started (its newest step is 42)" \
      in proc.stderr
  a, b = losses(lora), losses(workdir)
  assert [a[s] for s in (3, 4)] == [b[s] for s in (3, 4)]
  assert json.load(open(f"{workdir}/checkpoints/4/meta/metadata"))["lora_base"]["step"] == 40


def test_a_resume_whose_base_step_is_gone_stops_naming_it(tmp_path, lm_checkpoint):
  other_base = _copy_base(lm_checkpoint, str(tmp_path / "base"))
  workdir = str(tmp_path / "run")
  _sft(workdir, other_base, 2)
  _train_base_on(other_base)
  shutil.rmtree(os.path.join(other_base, "40"))
  proc = _sft(workdir, other_base, 4, ok=False)
  assert proc.returncode == 2
  assert f"init_from_checkpoint: {other_base} step 40: gone (steps now [42])" in proc.stderr


def _export(ckpt, out):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_hf.py"), f"--checkpoint={ckpt}",
                         f"--out={out}"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)


def test_a_reader_whose_base_moved_away_names_the_base_first(tmp_path, lora, base):
  moved = base + ".moved"
  os.rename(base, moved)
  try:
    proc = _export(f"{lora}/checkpoints", tmp_path / "hf")
  finally:
    os.rename(moved, base)
  assert proc.returncode == 2, proc.stderr[-2000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert errors and errors[0].startswith(f"error: lora_base: {os.path.abspath(base)} is gone"), proc.stderr
  assert "trying step" not in proc.stderr and "no readable checkpoint" not in proc.stderr


def test_a_reader_refuses_a_base_step_that_is_gone_or_changed(lora, base, one_device_sharding):
  if layout.latest_step(base) == 40:
    _train_base_on(base)
  ckpt = f"{lora}/checkpoints"
  step_dir, params = os.path.join(base, "40"), os.path.join(base, "40", "params")
  aside = base + ".40"
  os.rename(step_dir, aside)
  try:
    with pytest.raises(pins.SourceChanged, match=re.escape(
        f"lora_base: {os.path.abspath(base)} step 40: gone (steps now [42])")):
      load_checkpoint(ckpt, one_device_sharding)
  finally:
    os.rename(aside, step_dir)
  # Damaged or overwritten in place: the digest tells.
  shutil.move(params, aside)
  shutil.copytree(os.path.join(base, "42", "params"), params)
  try:
    with pytest.raises(pins.SourceChanged, match=re.escape(
        f"lora_base: {os.path.abspath(base)} step 40: content changed since the LoRA checkpoint {ckpt}/4")):
      load_checkpoint(ckpt, one_device_sharding)
  finally:
    shutil.rmtree(params)
    shutil.move(aside, params)
  load_checkpoint(ckpt, one_device_sharding)  # put back: reads again


def test_a_base_lacking_a_parameter_is_named(tmp_path, lora, one_device_sharding):
  """A checkpoint written before bases were pinned, whose base was replaced by a reward model."""
  from xy_jax.models.factory import init_model
  from xy_jax.models.reward import RewardModel
  meta = layout.load_meta(f"{lora}/checkpoints", 4)
  rm = str(tmp_path / "rm")
  cfg = layout.model_config_from_meta(meta, "lora").replace(lora_rank=0)
  model = init_model(RewardModel, cfg, one_device_sharding, seed=0)
  layout.save_model(rm, nnx.to_pure_dict(nnx.state(model)), {"model": cfg.to_dict(), "kind": "reward"})
  legacy = str(tmp_path / "legacy")
  adapters = select.params_matching(_stored_params(f"{lora}/checkpoints", 4), meta["trainable"])
  layout.save_model(legacy, adapters, {**meta, "lora_base": {"checkpoint": rm}}, 4)
  with pytest.raises(Exception, match=re.escape(f"lora_base: {rm}: has no parameter ['lm_head']['weight']")):
    load_checkpoint(legacy, one_device_sharding)


def test_a_dpo_resume_keeps_its_pinned_reference(tmp_path, lm_checkpoint):
  other_base = _copy_base(lm_checkpoint, str(tmp_path / "sft"))
  workdir = str(tmp_path / "dpo")
  common = (f"--config.init_from_checkpoint={other_base}", "--config.train.checkpoint_every=1",
            "--config.train.eval_every=100", "--config.optim.warmup_steps=0")
  _train("dpo_tiny.py", workdir, *common, "--config.train.steps=1")
  _train_base_on(other_base)
  proc = _train("dpo_tiny.py", workdir, *common, "--config.train.steps=2")
  assert f"dpo reference: {other_base} (step 40," in proc.stderr
  pins = json.load(open(f"{workdir}/checkpoints/2/meta/metadata"))["stage_meta"]["pins"]
  assert pins["dpo.reference_checkpoint"]["step"] == 40


def test_qlora_int4_takes_the_configs_group_size(tmp_path, lm_checkpoint):
  workdir = str(tmp_path / "qlora")
  quant = ("--config.lora.base_quant=int4",)
  proc = _sft(workdir, lm_checkpoint, 2, *quant, ok=False)
  advice = re.search(r"use (\d+), which divides them all: model\.quant_group_size=(\d+)", proc.stderr)
  assert proc.returncode == 2 and advice, proc.stderr[-2000:]
  proc = _sft(workdir, lm_checkpoint, 2, *quant, f"--config.model.quant_group_size={advice[2]}")
  assert "the rest are frozen in int4" in proc.stderr
  meta = json.load(open(f"{workdir}/checkpoints/2/meta/metadata"))
  assert meta["model"]["quant"] == "int4" and meta["model"]["quant_group_size"] == 32


def test_quantize_names_the_group_size_flag(one_device_sharding):
  from xy_jax.models.factory import init_model
  from xy_jax.models.llama import CausalLM
  from xy_jax.errors import ConfigError
  from xy_jax.models.presets import get_preset
  from xy_jax.quant.quantize_model import quantize_model
  cfg = get_preset("tiny")
  model = init_model(CausalLM, cfg, one_device_sharding, seed=0)
  with pytest.raises(ConfigError, match=re.escape("--group_size=128 does not divide the contracted size 352")):
    quantize_model(model, cfg, "int4", one_device_sharding, 128)
  assert quantize_model(model, cfg, "int4", one_device_sharding, 32).cfg.quant_group_size == 32


def _fake_reward_model(path, like_ckpt, sharding):
  from xy_jax.models.factory import init_model
  from xy_jax.models.reward import RewardModel
  cfg = layout.model_config_from_meta(layout.load_meta(like_ckpt), like_ckpt)
  model = init_model(RewardModel, cfg, sharding, seed=1)
  layout.save_model(path, nnx.to_pure_dict(nnx.state(model)), {"model": cfg.to_dict(), "kind": "reward"})
  return path


def test_ppo_pins_its_sources_and_a_resume_holds_to_them(tmp_path, lm_checkpoint, one_device_sharding):
  from tests.train.test_config import load
  from xy_jax.train.setup import setup
  actor = _copy_base(lm_checkpoint, str(tmp_path / "sft"))
  rm = _fake_reward_model(str(tmp_path / "rm"), actor, one_device_sharding)
  cfg = load(os.path.join(ROOT, "configs", "ppo_tiny.py"))
  cfg.ppo.actor_checkpoint, cfg.ppo.reward_checkpoint = actor, rm
  cfg.data.sources.prompts.paths = (os.path.join(ROOT, "data/rl/prompts.jsonl"),)
  quiet = lambda *_: None  # noqa: E731
  rs = setup(cfg, log=quiet)
  rs.init_state(log=quiet)
  rs.learner.frozen  # the reference and reward models load when the first step needs them
  recorded = json.loads(json.dumps(rs.task.meta["pins"]))
  assert {f: p["step"] for f, p in recorded.items()} == {
      "ppo.actor_checkpoint": 40, "ppo.critic_checkpoint": 0, "ppo.reward_checkpoint": 0}

  _train_base_on(actor)
  _train_base_on(rm)
  rs = setup(cfg, log=quiet)
  rs.pins.hold(recorded)  # what restoring the run's checkpoint does
  frozen = rs.learner.frozen
  for got, want in ((frozen["ref_params"], _stored_params(actor, 40)), (frozen["rm_params"], _stored_params(rm, 0))):
    got = _flat(got)
    for k, v in _flat(want).items():
      np.testing.assert_array_equal(got[k], v, err_msg=k)

  shutil.rmtree(os.path.join(rm, "0"))
  rs = setup(cfg, log=quiet)
  rs.pins.hold(recorded)
  with pytest.raises(pins.SourceChanged, match=re.escape(
      f"ppo.reward_checkpoint: {rm} step 0: gone (steps now [2])")):
    rs.learner.frozen
