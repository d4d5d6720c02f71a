"""PPO end to end: four models, frozen ones untouched, exact first ratios, learning, resume, export."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.train.train_helpers import ROOT, env, losses


def _cfg(lm, rm, **over):
  from tests.train.test_config import load
  cfg = load(os.path.join(ROOT, "configs", "ppo_tiny.py"))
  cfg.ppo.actor_checkpoint = lm
  cfg.ppo.reward_checkpoint = rm
  cfg.data.sources.prompts.paths = (os.path.join(ROOT, "data/rl/prompts.jsonl"),)
  for k, v in over.items():
    section, name = k.split("__")
    cfg[section][name] = v
  return cfg


def test_frozen_models_stay_bit_identical_and_first_ratios_are_one(lm_checkpoint, rm_checkpoint):
  from xy_jax.train.setup import setup
  rs = setup(_cfg(lm_checkpoint, rm_checkpoint, train__steps=3), log=lambda *_: None)
  frozen_before = jax.tree.map(np.array, (rs.learner.frozen["ref_params"], rs.learner.frozen["rm_params"]))
  state = rs.init_state(log=lambda *_: None)
  actor_before = jax.tree.map(np.array, state.params["actor"])
  critic_before = jax.tree.map(np.array, state.params["critic"])
  for step in range(3):
    batch = rs.task.train_source[step]
    state, m = rs.train_step(state, rs.to_device(batch))
    assert float(m["first_ratio_max_dev"]) == 0.0  # exactly 1 before any update
  frozen_after = jax.tree.map(np.array, (rs.learner.frozen["ref_params"], rs.learner.frozen["rm_params"]))
  for a, b in zip(jax.tree.leaves(frozen_before), jax.tree.leaves(frozen_after)):
    assert a.tobytes() == b.tobytes()
  changed = lambda before, after: any(  # noqa: E731
      not np.array_equal(a, np.asarray(b)) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))
  assert changed(actor_before, state.params["actor"]) and changed(critic_before, state.params["critic"])
  assert int(state.step) == 3


def _ppo(workdir, lm, rm, *overrides, steps):
  cmd = [sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/ppo_tiny.py",
         f"--workdir={workdir}", "--cpu_devices=2", f"--config.ppo.actor_checkpoint={lm}",
         f"--config.train.steps={steps}", *overrides]
  if rm:
    cmd.append(f"--config.ppo.reward_checkpoint={rm}")
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _metric(workdir, key):
  out = {}
  for line in open(os.path.join(workdir, "metrics.jsonl")):
    r = json.loads(line)
    if key in r:
      out[r["step"]] = r[key]
  return out


LEARNABLE = ("--config.ppo.reward_fn=brevity", "--config.ppo.temperature=1.0",
             "--config.ppo.actor_lr=3e-4", "--config.ppo.critic_lr=3e-4", "--config.optim.schedule=constant")


@pytest.mark.heavy
def test_mean_reward_rises_while_kl_stays_bounded(tmp_path, lm_checkpoint):
  workdir = str(tmp_path / "ppo")
  _ppo(workdir, lm_checkpoint, None, *LEARNABLE, f"--config.ppo.critic_checkpoint={lm_checkpoint}",
       steps=24)
  reward, kl = _metric(workdir, "reward_mean"), _metric(workdir, "kl")
  first = np.mean([reward[s] for s in range(1, 6)])
  last = np.mean([reward[s] for s in range(20, 25)])
  assert last > first + 0.4, (first, last)
  assert max(kl.values()) < 8.0 and np.mean([kl[s] for s in range(20, 25)]) < 4.0, kl


def test_resume_mid_ppo_matches_an_uninterrupted_run(tmp_path, lm_checkpoint, rm_checkpoint):
  common = ("--config.optim.schedule=constant", "--config.train.checkpoint_every=2")
  straight = str(tmp_path / "straight")
  _ppo(straight, lm_checkpoint, rm_checkpoint, *common, steps=6)
  split = str(tmp_path / "split")
  _ppo(split, lm_checkpoint, rm_checkpoint, *common, steps=3)
  proc = _ppo(split, lm_checkpoint, rm_checkpoint, *common, steps=6)
  assert "resumed from" in proc.stderr
  a, b = losses(straight), losses(split)
  assert sorted(a) == sorted(b) == list(range(1, 7))
  assert a == b
  assert _metric(straight, "reward_mean") == _metric(split, "reward_mean")

  # The actor exports as a causal LM, the critic as a sequence classifier.
  for part, arch in (("actor", "LlamaForCausalLM"), ("critic", "LlamaForSequenceClassification")):
    out = str(tmp_path / f"hf_{part}")
    exp = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_hf.py"),
                          f"--checkpoint={split}/checkpoints", f"--out={out}", f"--part={part}"],
                         capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
    assert exp.returncode == 0, exp.stderr[-2000:]
    assert json.load(open(os.path.join(out, "config.json")))["architectures"] == [arch]


def test_normalize_reward_uses_the_reward_models_held_out_statistics(lm_checkpoint, rm_checkpoint):
  from xy_jax.weights.layout import load_meta
  from xy_jax.errors import ConfigError
  from xy_jax.rl.ppo import held_out_score_stats
  from xy_jax.train.setup import setup
  meta = load_meta(rm_checkpoint)
  mean, std = held_out_score_stats(meta, rm_checkpoint)
  assert mean == meta["last_eval"]["eval/score_mean/preference"] and std > 0
  with pytest.raises(ConfigError, match="has no held-out score statistics"):
    held_out_score_stats({}, "ckpt")

  reward_means = []
  for normalize in (False, True):
    rs = setup(_cfg(lm_checkpoint, rm_checkpoint, train__steps=2, ppo__normalize_reward=normalize,
                    ppo__no_eos_penalty=0.0), log=lambda *_: None)
    assert rs.learner.frozen["reward_norm"] == ((mean, std) if normalize else None)
    state = rs.init_state(log=lambda *_: None)
    batch = rs.task.train_source[0]
    _, m = rs.train_step(state, rs.to_device(batch))
    reward_means.append(float(m["reward_mean"]))
  # Same actor, prompts and sampling seed: the same answers, so the batch mean maps linearly.
  np.testing.assert_allclose(reward_means[1], (reward_means[0] - mean) / std, rtol=1e-4, atol=1e-5)


def test_ppo_weight_decay_spares_norms_like_every_other_stage(lm_checkpoint, rm_checkpoint):
  import optax
  from xy_jax.train.setup import setup
  rs = setup(_cfg(lm_checkpoint, rm_checkpoint, optim__weight_decay=0.1, optim__warmup_steps=0),
             log=lambda *_: None)
  params = jax.tree.map(lambda a: np.ones(a.shape, a.dtype), rs.abstract_state.params)
  updates, _ = rs.tx.update(jax.tree.map(np.zeros_like, params), rs.tx.init(params), params)
  after = optax.apply_updates(params, updates)
  for part in ("actor", "critic"):
    assert np.all(np.asarray(after[part]["model"]["norm"]["weight"]) == 1.0)
    assert np.all(np.asarray(after[part]["model"]["layers"]["mlp"]["up_proj"]["weight"]) < 1.0)


def test_the_critic_starts_from_a_token_contrastive_reward_model(tmp_path, lm_checkpoint):
  """XuanYuan-6B's recipe: the RM trained with the token-level loss initialises PPO's critic."""
  from tests.train.train_helpers import train_checkpoint
  from flax import nnx
  from xy_jax.weights.load import load_checkpoint
  from xy_jax.sharding import LogicalSharding
  from xy_jax.train.setup import setup
  rm = train_checkpoint("reward_tiny.py", str(tmp_path / "rm"), f"--config.init_from_checkpoint={lm_checkpoint}",
                        "--config.reward.loss=token_contrastive", "--config.train.steps=20",
                        "--config.train.eval_every=20")
  records = [json.loads(line) for line in open(tmp_path / "rm" / "metrics.jsonl")]
  losses_ = [r["loss"] for r in records if "loss" in r]
  assert np.all(np.isfinite(losses_)) and "eval/accuracy/preference" in records[-1]
  rs = setup(_cfg(lm_checkpoint, None, ppo__reward_fn="brevity", ppo__critic_checkpoint=rm, train__steps=2),
             log=lambda *_: None)
  state = rs.init_state(log=lambda *_: None)
  trained = load_checkpoint(rm, LogicalSharding(rs.mesh))
  want = jax.tree.leaves(jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(trained.model))))
  got = jax.tree.leaves(jax.tree.map(np.asarray, state.params["critic"]))
  assert all(np.array_equal(a, b) for a, b in zip(want, got))  # value head included
  state, m = rs.train_step(state, rs.to_device(rs.task.train_source[0]))
  assert np.isfinite(float(m["value_loss"])) and int(state.step) == 1


def test_lora_actor_trains_its_adapters_and_the_whole_critic(tmp_path, lm_checkpoint, rm_checkpoint):
  from flax import nnx
  from xy_jax.weights.load import load_checkpoint
  from xy_jax.sharding import LogicalSharding, make_mesh
  workdir = str(tmp_path / "ppo_lora")
  proc = _ppo(workdir, lm_checkpoint, rm_checkpoint, "--config.lora.rank=4", "--config.lora.targets=q_proj|v_proj",
              "--config.ppo.actor_lr=1e-2", "--config.train.checkpoint_every=2", steps=2)
  assert "lora rank 4 on q_proj, v_proj" in proc.stderr
  sharding = LogicalSharding(make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1]))
  pure = lambda loaded: jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(loaded.model)))  # noqa: E731
  actor = load_checkpoint(f"{workdir}/checkpoints", sharding, part="actor")
  assert actor.cfg.lora_rank == 4 and actor.kind == "causal_lm"
  tuned, base = pure(actor), pure(load_checkpoint(lm_checkpoint, sharding))
  attn, base_attn = tuned["model"]["layers"]["self_attn"], base["model"]["layers"]["self_attn"]
  for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
    np.testing.assert_array_equal(attn[name]["weight"], base_attn[name]["weight"])  # the base is frozen
  assert np.abs(attn["q_proj"]["lora_b"]).max() > 0 and "lora_a" not in attn["k_proj"]
  critic = pure(load_checkpoint(f"{workdir}/checkpoints", sharding, part="critic"))
  rm = pure(load_checkpoint(rm_checkpoint, sharding))
  assert not np.array_equal(critic["score"]["weight"], rm["score"]["weight"])  # the critic trains whole
  # The checkpoint holds the adapters and the critic: far less than the actor's parameters.
  size = lambda d: sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)  # noqa: E731
  assert size(f"{workdir}/checkpoints/2/params") < 1.5 * size(os.path.join(rm_checkpoint, "20", "params"))
  out = str(tmp_path / "hf_actor")
  exp = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_hf.py"),
                        f"--checkpoint={workdir}/checkpoints", f"--out={out}", "--part=actor"],
                       capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
  assert exp.returncode == 0 and "folded the LoRA adapters" in exp.stderr, exp.stderr[-2000:]
