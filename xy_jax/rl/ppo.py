"""PPO stage: actor, reference, critic and reward models on one mesh (../shared/rlhf.md).

`build` checks the config, reads the models' configs and the prompts; the frozen reference and
reward models load when the first step needs them (`load_frozen`: the steps the run pinned, so a
resume reads the same ones), or, when planning, are shapes. The step itself is `PPOLearner`
(rl/ppo_learner.py). Only actor and critic are trained and checkpointed (as one `ActorCritic`
model).
"""

from __future__ import annotations

import functools

import jax
from ml_collections import ConfigDict

from xy_jax.config import require
from xy_jax.data.pipeline import EpochPlanner, SourceRows, StepBatches
from xy_jax.data.sources import SkipReport
from xy_jax.data.step_source import ShuffledSteps
from xy_jax.data.tokenizer import ChatTemplate, Tokenizer
from xy_jax.models.actor_critic import actor_critic_class
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.models.presets import get_preset
from xy_jax.models.reward import RewardModel
from xy_jax.rl.ppo_learner import PTX_KEYS, PPOLearner
from xy_jax.rl.prompts import drop_duplicate_prompts, prompt_batch, read_prompts
from xy_jax.rl.rewards import RULES
from xy_jax.train.pretrain import open_sources
from xy_jax.train.task import Task, check_rows
from xy_jax.weights import layout
from xy_jax.weights.cast import abstract_frozen, split_frozen
from xy_jax.weights.pins import Pins
from xy_jax.weights.start import ACTOR_FIELD, REWARD_FIELD, pinned_model


def validate_config(c: ConfigDict) -> None:
  pp = c.ppo
  require("ppo.kl_estimator", pp.kl_estimator in ("k1", "k3"), f"{pp.kl_estimator!r}: k1 or k3")
  require("ppo.frozen_dtype", pp.frozen_dtype in ("float32", "bfloat16"), "float32 or bfloat16")
  for name in ("prompts_per_step", "max_prompt_len", "max_answer_len", "ppo_epochs", "mini_batches"):
    require(f"ppo.{name}", pp[name] > 0, "must be positive")
  require("ppo.mini_batches", pp.prompts_per_step % pp.mini_batches == 0,
          f"{pp.mini_batches} does not divide ppo.prompts_per_step={pp.prompts_per_step}")
  require("ppo.ema_beta", 0 <= pp.ema_beta < 1, "in [0, 1)")
  require("ppo.rollout_mesh", isinstance(pp.rollout_mesh, str), f"{pp.rollout_mesh!r}: a string")


def build(cfg: ConfigDict, model_cfg: ModelConfig, tok: Tokenizer | None, sharding, log) -> Task:
  """`tok=None` builds the stage for planning: shapes from the config (`model`, `ppo.critic_preset`),
  no checkpoint or prompt is read."""
  p = cfg.ppo
  numerics = model_cfg.numerics()
  if p.reward_fn is not None and p.reward_fn not in RULES:
    raise ConfigError(f"ppo.reward_fn={p.reward_fn!r}: choose one of {sorted(RULES)}")
  check_rows("ppo.prompts_per_step", p.prompts_per_step, p.prompts_per_step // p.mini_batches, sharding,
             cfg.optim.grad_accum, what=f"prompts per mini-batch (ppo.mini_batches={p.mini_batches})")
  check_rows("ppo.prompts_per_step", p.prompts_per_step, p.prompts_per_step, sharding, what="prompts")
  seq_len = p.max_prompt_len + p.max_answer_len
  critic_path = p.critic_checkpoint or p.reward_checkpoint

  if tok is None:  # planning
    actor_cfg = model_cfg
    critic_cfg = get_preset(p.critic_preset, **numerics) if p.critic_preset else actor_cfg
    if p.critic_preset and p.critic_preset_layers:  # the planner's layer probes
      critic_cfg = critic_cfg.replace(num_hidden_layers=p.critic_preset_layers)
    ref_graph, ref_params = abstract_frozen(CausalLM, actor_cfg, sharding, p.frozen_dtype)
    rm_graph, rm_params = (None, None) if p.reward_fn else abstract_frozen(
        RewardModel, critic_cfg, sharding, p.frozen_dtype)
    frozen = {"ref_graph": ref_graph, "ref_params": ref_params, "rm_graph": rm_graph,
              "rm_params": rm_params, "reward_norm": None}
    eos, pad = actor_cfg.eos_token_id, actor_cfg.pad_token_id
  else:
    if not p.actor_checkpoint:
      raise ConfigError("ppo.actor_checkpoint: required for stage 'ppo' (an SFT checkpoint)")
    if not critic_path:
      raise ConfigError("ppo.critic_checkpoint: required (or ppo.reward_checkpoint, its default)")
    if p.reward_fn is None and not p.reward_checkpoint:
      raise ConfigError("ppo.reward_checkpoint: required unless ppo.reward_fn names a rule reward")
    actor_meta = layout.load_meta(p.actor_checkpoint)
    actor_cfg = layout.model_config_from_meta(actor_meta, p.actor_checkpoint).replace(**numerics)
    critic_cfg = layout.model_config_from_meta(
        layout.load_meta(critic_path), critic_path).replace(**numerics)
    if p.reward_fn is None:  # checked now on the newest meta; the weights load at the first step
      _check_reward(layout.load_meta(p.reward_checkpoint), p)
    eos, pad = tok.eos_id, tok.pad_id
    frozen = functools.partial(load_frozen, p, sharding, numerics, log)
  if seq_len > actor_cfg.max_position_embeddings:
    raise ConfigError(f"ppo.max_prompt_len + ppo.max_answer_len = {seq_len} exceeds the actor's "
                      f"max_position_embeddings={actor_cfg.max_position_embeddings}")
  text_sources = [n for n, s in cfg.data.sources.items() if s.get("format", "text") != "prompt"]
  if p.ptx_coef > 0 and not text_sources:
    raise ConfigError("ppo.ptx_coef > 0 needs a plain-text source in data.sources")

  def plan_batches():
    b = p.prompts_per_step
    out = {"prompt_tokens": ((b, p.max_prompt_len), "int32"), "prompt_valid": ((b, p.max_prompt_len), "int32")}
    if p.ptx_coef > 0:
      out.update({f"ptx_{k}": ((b, seq_len), "int32") for k in PTX_KEYS})
    return {f"prompts x {p.max_prompt_len} + answers x {p.max_answer_len}": out}

  task = Task(
      name="ppo", model_cls=actor_critic_class(critic_cfg),
      kind="ppo", loss_sums=None, train_source=None, eval_sets={}, model_config=actor_cfg,
      data_plan={"prompts_per_step": p.prompts_per_step},
      learner=PPOLearner(cfg, actor_cfg, critic_cfg, frozen, eos, pad, log),
      flops_per_token=lambda n: actor_cfg.flops_per_token(n) + critic_cfg.flops_per_token(n),
      meta={"critic_model": critic_cfg.to_dict(), "actor_checkpoint": p.actor_checkpoint,
            "critic_checkpoint": critic_path, "reward_checkpoint": p.reward_checkpoint,
            "reward_fn": p.reward_fn},
      summary=[f"ppo: {p.prompts_per_step} prompts per step, prompt <= {p.max_prompt_len} + answer <= "
               f"{p.max_answer_len} tokens; actor {actor_cfg.param_count() / 1e6:.2f}M, critic "
               f"{critic_cfg.param_count() / 1e6:.2f}M params; reward: "
               f"{p.reward_fn or p.reward_checkpoint or p.critic_preset}"],
      summarize=lambda m: m, tokens_in_batch=lambda b: int(b["prompt_tokens"].shape[0]) * seq_len,
      plan_batches=plan_batches)
  if tok is None:
    return task

  # --- data ------------------------------------------------------------------------------------
  d = cfg.data
  template = ChatTemplate(system=cfg.sft.system)
  report = SkipReport()
  prompts = []
  for name, src in d.sources.items():
    if src.get("format", "text") == "prompt":
      prompts += read_prompts(list(src.paths), f"data.sources.{name}.paths", tok, template,
                              p.max_prompt_len, report)
  prompts = drop_duplicate_prompts(prompts, report, d.dedup_prompts)  # across every prompt source
  if report.total:
    log(f"prompts: {report.summary()}")
    for example in report.examples:
      log(f"  skipped {example}")
  if len(prompts) < p.prompts_per_step:
    raise ConfigError(f"data.sources: {len(prompts)} usable prompts, fewer than ppo.prompts_per_step="
                      f"{p.prompts_per_step}")
  ptx = None
  if p.ptx_coef > 0:
    rows = [SourceRows(s, (seq_len,), "train", 0.0, cfg.seed) for s in open_sources(cfg, tok, log, text_sources)]
    planner = EpochPlanner(rows, [cfg.data.sources[n].get("weight", 1.0) for n in text_sources],
                           (seq_len,), seq_len * p.prompts_per_step, cfg.seed)
    ptx = StepBatches(planner, tok.pad_id, cfg.train.steps, jax.process_index(), jax.process_count())

  def make_batch(mine, step):
    batch = prompt_batch([prompts[i] for i in mine], p.max_prompt_len, tok.pad_id)
    if ptx is not None:
      rows = ptx[step]
      batch.update({f"ptx_{k}": rows[k] for k in PTX_KEYS})
    return batch

  task.train_source = ShuffledSteps(len(prompts), p.prompts_per_step, cfg.seed, cfg.train.steps, make_batch,
                                    seq_len, jax.process_index(), jax.process_count())
  task.summary[0] = f"{len(prompts)} prompts; " + task.summary[0]
  return task


def _check_reward(meta: dict, p: ConfigDict) -> None:
  kind = meta.get("kind", "causal_lm")
  if kind != "reward":
    raise ConfigError(f"ppo.reward_checkpoint: {p.reward_checkpoint} holds a {kind} model, not a "
                      "reward model")
  if p.normalize_reward:
    held_out_score_stats(meta, p.reward_checkpoint)  # raises when the statistics are missing


def load_frozen(p: ConfigDict, sharding, numerics: dict, log, pins: Pins | None) -> dict:
  """The reference and reward models (graphs, parameters in ppo.frozen_dtype) and the reward
  normalisation: the steps this run pinned (`pins`)."""
  reference = pinned_model(p.actor_checkpoint, ACTOR_FIELD, sharding, pins, numerics, log, "reference")
  ref_graph, ref_params = split_frozen(reference.model, p.frozen_dtype)
  out = {"ref_graph": ref_graph, "ref_params": ref_params, "rm_graph": None, "rm_params": None,
         "reward_norm": None}
  if p.reward_fn is not None:
    return out
  reward = pinned_model(p.reward_checkpoint, REWARD_FIELD, sharding, pins, numerics, log)
  _check_reward(reward.meta, p)
  out["rm_graph"], out["rm_params"] = split_frozen(reward.model, p.frozen_dtype)
  if p.normalize_reward:
    out["reward_norm"] = held_out_score_stats(reward.meta, p.reward_checkpoint)
    log(f"ppo.normalize_reward: scores become (score - {out['reward_norm'][0]:.4f}) / "
        f"{out['reward_norm'][1]:.4f}, the reward model's held-out statistics")
  return out


def held_out_score_stats(meta: dict, path: str) -> tuple[float, float]:
  """(mean, std) of a reward model's scores on its held-out pairs, from its checkpoint meta."""
  stats = meta.get("last_eval", {})
  means = sorted(k for k in stats if k.startswith("eval/score_mean/"))
  if not means:
    raise ConfigError(f"ppo.normalize_reward: {path} has no held-out score statistics in its meta "
                      "(train the reward model with data.eval_fraction > 0)")
  name = means[0].removeprefix("eval/score_mean/")
  mean, std = float(stats[f"eval/score_mean/{name}"]), float(stats[f"eval/score_std/{name}"])
  if not std > 0:
    raise ConfigError(f"ppo.normalize_reward: {path}: held-out score std is {std}; cannot normalise")
  return mean, std
