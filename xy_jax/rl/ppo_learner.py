"""PPO's learner: one step = sample, score, then `ppo_epochs` x `mini_batches` gradient updates.

The actor samples answers for a batch of prompts with the KV-cache decoder on its live parameters;
with no gradients, the actor and reference log-probs, the critic values and the reward score give
per-token rewards (KL penalty + clipped score on the last token) and GAE advantages. Each update
is the generic gradient step (`make_train_step`: micro-batch accumulation, the non-finite skip)
over the policy and value losses written as sums over response tokens; actor and critic have their
own AdamW (learning rates) through one optimizer builder. Reference and reward are frozen, held
by the learner and never checkpointed.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from ml_collections import ConfigDict

from xy_jax.infer.generate import decode
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import abstract_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import ModelConfig
from xy_jax.models.reward import sequence_scores
from xy_jax.rl import ppo_math
from xy_jax.rl.rewards import RULES
from xy_jax.rl.rollout_layout import device_hbm_bytes, rollout_layout
from xy_jax.train.learner import Learner, StepContext
from xy_jax.train.losses import lm_loss_sums
from xy_jax.train.optim import optimizer
from xy_jax.train.state import TrainState
from xy_jax.train.step import make_train_step
from xy_jax.weights.pins import Pins
from xy_jax.weights.start import starting_weights

PTX_KEYS = ("tokens", "positions", "segment_ids", "loss_mask")


def response_slice(x, prompt_len: int, answer_len: int):
  """Outputs at the positions that predict answer tokens 0..N-1 (the last prompt token onwards)."""
  return x[:, prompt_len - 1:prompt_len - 1 + answer_len]


class PPOLearner(Learner):
  supports_trainable = False  # optim.trainable: no; LoRA adapters on the actor: yes
  lora_pattern = r"^actor\..*\.lora_[ab]$|^critic\."  # the actor's adapters and the whole critic

  def lora_base(self, cfg, required):
    """The actor's base; the critic is checkpointed whole."""
    path = self.p.actor_checkpoint
    return {"checkpoint": os.path.abspath(path), "part": "actor"} if path else {}
  estimates_time = False  # generation is a loop XLA's cost model counts once

  def __init__(self, cfg: ConfigDict, actor_cfg: ModelConfig, critic_cfg: ModelConfig,
               frozen: dict | Callable[[Pins | None], dict], eos: int, pad: int, log):
    """`frozen`: reference and reward graph/params (abstract when planning) and reward_norm, or a
    function of the run's pins loading them when first needed (the first step: after a resume's restore, so they
    are the steps the run pinned)."""
    self.cfg, self.p = cfg, cfg.ppo
    self.actor_cfg, self.critic_cfg = actor_cfg, critic_cfg
    self._load_frozen, self._frozen = (frozen, None) if callable(frozen) else (None, frozen)
    self.eos, self.pad, self.log = eos, pad, log

  @property
  def frozen(self) -> dict:
    if self._frozen is None:
      self._frozen = self._load_frozen(self.pins)
    return self._frozen

  # --- state -----------------------------------------------------------------------------------
  def optimizer(self, cfg):
    p = cfg.ppo
    return optimizer(cfg.optim, cfg.train.steps * p.ppo_epochs * p.mini_batches,
                     groups={"actor": p.actor_lr, "critic": p.critic_lr})

  def init_params(self, cfg, model_cfg, model_cls, sharding, log):
    return starting_weights(cfg, model_cfg, model_cls, sharding, self.pins, log, critic_cfg=self.critic_cfg)

  def init_extra(self, params):
    extra = {"kl_coef": jnp.asarray(self.p.kl_ctl, jnp.float32)}
    if self.p.ema_beta > 0:
      extra["ema_actor"] = jax.tree.map(lambda x: x, params["actor"])
    return extra

  def extra_shardings(self, param_shardings, replicated):
    out = {"kl_coef": replicated}
    if self.p.ema_beta > 0:
      out["ema_actor"] = param_shardings["actor"]
    return out

  # --- the step --------------------------------------------------------------------------------
  def loss_sums(self, first: bool):
    """(model, mini-batch) -> sums: policy + value loss over response tokens (+ the ptx term scaled
    so that dividing by the response-token count gives ptx_coef x its own mean)."""
    p, P, N = self.p, self.p.max_prompt_len, self.p.max_answer_len

    def sums(model, mb):
      logits, _ = model.actor(mb["tokens"], mb["positions"], mb["segment_ids"])
      logp, _ = ppo_math.response_logprobs(response_slice(logits, P, N), mb["answers"], p.temperature)
      # Before any update the policy *is* the old policy: ratios are exactly 1, not 1 +- rounding.
      old = jax.lax.stop_gradient(logp) if first else mb["logp"]
      pg_sum, pstats = ppo_math.policy_loss_sums(logp, old, mb["advantages"], mb["mask"], p.cliprange)
      values, _ = model.critic(mb["tokens"], mb["positions"], mb["segment_ids"])
      v_sum, vstats = ppo_math.value_loss_sums(response_slice(values, P, N), mb["values"], mb["returns"],
                                               mb["mask"], p.cliprange_value)
      out = {"nll_sum": pg_sum + v_sum, "z_sum": jnp.zeros((), jnp.float32), "count": jnp.sum(mb["mask"]),
             "policy_loss_sum": pg_sum, "value_loss_sum": v_sum, **pstats, **vstats}
      if p.ptx_coef > 0:
        ptx_logits, _ = model.actor(mb["ptx_tokens"], mb["ptx_positions"], mb["ptx_segment_ids"])
        ptx = lm_loss_sums(ptx_logits, mb["ptx_tokens"], mb["ptx_loss_mask"])
        out["nll_sum"] = out["nll_sum"] + jnp.mean(mb["ptx_scale"]) * ptx["nll_sum"]
        out["ptx_nll_sum"], out["ptx_count_sum"] = ptx["nll_sum"], ptx["count"]
      return out

    return sums

  def build_step(self, ctx: StepContext):
    cfg, p = self.cfg, self.p  # self.frozen is read at the first step, not here (see __init__)
    P, N, eos, pad = p.max_prompt_len, p.max_answer_len, self.eos, self.pad
    sampling = SamplingConfig(greedy=False, temperature=p.temperature, top_p=p.top_p, max_new_tokens=N)
    graphdef, lr_schedule = ctx.graphdef, ctx.lr_schedule
    base_rng = jax.random.key(cfg.seed)

    layout = rollout_layout(p.rollout_mesh, ctx.model_cfg, ctx.sharding, p.prompts_per_step,
                            p.max_prompt_len + p.max_answer_len, device_hbm_bytes())
    self.layout = layout
    actor_graph = layout.graphdef if layout else abstract_model(CausalLM, ctx.model_cfg, ctx.sharding)[0]

    @jax.jit
    def generate(actor_params, prompt_tokens, prompt_valid, step):
      return decode(nnx.merge(actor_graph, actor_params), prompt_tokens, prompt_valid, jax.random.fold_in(base_rng, step), sampling,
                    eos, pad)

    def rollout(params, prompt_tokens, prompt_valid, step):
      if layout is None:  # the live actor in the training layout: no copy of its weights
        return generate(params["actor"], prompt_tokens, prompt_valid, step)
      answers, done = generate(layout.reshard(params["actor"]), layout.put_rows(prompt_tokens),
                               layout.put_rows(prompt_valid), layout.put_replicated(step))
      rows = prompt_tokens.sharding
      return (jax.device_put(answers, rows),
              jax.device_put(done, NamedSharding(rows.mesh, PartitionSpec(rows.spec[0]))))

    def sequence(prompt_tokens, prompt_valid, answers, done):
      t = jnp.arange(N)[None]
      first_eos = jnp.argmax(answers == eos, axis=1)
      last = jnp.where(done, first_eos, N - 1)
      mask = (t <= last[:, None]).astype(jnp.int32)
      tokens = jnp.concatenate([prompt_tokens, answers], axis=1)
      seg = jnp.concatenate([prompt_valid, mask], axis=1)
      positions = jnp.maximum(jnp.cumsum(seg, axis=1) - 1, 0).astype(jnp.int32)
      return tokens, positions, seg, mask

    @jax.jit
    def experience(params, ref_params, rm_params, kl_coef, prompt_tokens, prompt_valid, answers, done):
      frozen = self.frozen
      tokens, positions, seg, mask = sequence(prompt_tokens, prompt_valid, answers, done)
      m = nnx.merge(graphdef, params)
      logits, _ = m.actor(tokens, positions, seg)
      logp, entropy = ppo_math.response_logprobs(response_slice(logits, P, N), answers, p.temperature)
      ref_logits, _ = nnx.merge(frozen["ref_graph"], ref_params)(tokens, positions, seg)
      logp_ref, _ = ppo_math.response_logprobs(response_slice(ref_logits, P, N), answers, p.temperature)
      values, _ = m.critic(tokens, positions, seg)
      values = response_slice(values, P, N)
      if frozen["rm_graph"] is not None:
        rm_values, _ = nnx.merge(frozen["rm_graph"], rm_params)(tokens, positions, seg)
        score = sequence_scores(rm_values, seg)
        if frozen["reward_norm"] is not None:
          mean, std = frozen["reward_norm"]
          score = (score - mean) / std
      else:
        score = RULES[p.reward_fn](answers, mask)
      score = score - p.no_eos_penalty * (1.0 - done.astype(jnp.float32))
      fmask = mask.astype(jnp.float32)
      rewards = ppo_math.token_rewards(logp, logp_ref, fmask, score, kl_coef, p.clip_reward_value,
                                       p.kl_estimator)
      adv, returns = ppo_math.gae(rewards, values, fmask, p.gamma, p.lam)
      if p.whiten_advantages:
        adv = ppo_math.whiten(adv, fmask)
      exp = {"tokens": tokens, "positions": positions, "segment_ids": seg, "answers": answers,
             "mask": fmask, "logp": logp, "values": values * fmask, "advantages": adv,
             "returns": returns}
      kl = ppo_math.masked_mean(logp - logp_ref, fmask)
      stats = {"reward_mean": jnp.mean(score), "reward_std": jnp.std(score), "kl": kl,
               "entropy": ppo_math.masked_mean(entropy, fmask),
               "response_length": jnp.mean(jnp.sum(fmask, axis=1)),
               "finished": jnp.mean(done.astype(jnp.float32)),
               "advantage_mean": ppo_math.masked_mean(adv, fmask)}
      return exp, stats

    def hold(state, params):  # critic warm-up: the actor stays put
      warm = state.step < p.critic_warmup_steps
      return {"actor": jax.tree.map(lambda new, old: jnp.where(warm, old, new), params["actor"],
                                    state.params["actor"]), "critic": params["critic"]}

    updates = {first: jax.jit(make_train_step(graphdef, self.loss_sums(first), ctx.tx, lr_schedule,
                                              cfg.optim.grad_accum, 0.0, ctx.sharding, ctx.trainable,
                                              advance=False, hold=hold),
                              donate_argnums=0, out_shardings=(ctx.state_shardings, None))
               for first in (True, False)}

    @functools.partial(jax.jit, donate_argnums=0)
    def finish(state, kl, all_ok):
      extra = dict(state.extra)
      if p.kl_target is not None:
        extra["kl_coef"] = ppo_math.adaptive_kl(extra["kl_coef"], kl, p.kl_target, p.kl_horizon,
                                                p.prompts_per_step)
      if p.ema_beta > 0:
        extra["ema_actor"] = jax.tree.map(lambda e, a: p.ema_beta * e + (1 - p.ema_beta) * a,
                                          extra["ema_actor"], state.params["actor"])
      bad = 1 - all_ok
      return TrainState(state.step + 1, state.params, state.opt_state,
                        jnp.where(bad > 0, state.bad_streak + 1, 0), state.bad_total + bad, extra)

    @jax.jit
    def mini_batch(exp, idx):
      mb = jax.tree.map(lambda x: x[idx], exp) if p.mini_batches > 1 else dict(exp)  # one: no copy
      if p.ptx_coef > 0:  # ptx_coef x (ptx mean) once the step divides by the response tokens
        scale = p.ptx_coef * jnp.sum(mb["mask"]) / jnp.maximum(jnp.sum(mb["ptx_loss_mask"]), 1.0)
        mb["ptx_scale"] = jnp.full((idx.shape[0],), scale, jnp.float32)
      return mb

    def step(state, batch):
      frozen = self.frozen
      prompt_tokens, prompt_valid = batch["prompt_tokens"], batch["prompt_valid"]
      start = time.perf_counter()
      answers, done = rollout(state.params, prompt_tokens, prompt_valid, state.step)
      jax.block_until_ready(answers)
      gen_time = time.perf_counter() - start
      exp, stats = experience(state.params, frozen["ref_params"], frozen["rm_params"],
                              state.extra["kl_coef"], prompt_tokens, prompt_valid, answers, done)
      exp.update({f"ptx_{k}": batch[f"ptx_{k}"] for k in PTX_KEYS if f"ptx_{k}" in batch})
      b = p.prompts_per_step
      per_mb = b // p.mini_batches
      update_stats = []
      for epoch in range(p.ppo_epochs):
        order = np.random.default_rng([cfg.seed, int(jax.device_get(state.step)), epoch]).permutation(b) \
            if p.mini_batches > 1 else np.arange(b)
        for k in range(p.mini_batches):
          idx = jnp.asarray(np.sort(order[k * per_mb:(k + 1) * per_mb]))
          state, m = updates[epoch == 0 and k == 0](state, mini_batch(exp, idx))
          update_stats.append(_update_means(m))
      oks = jnp.stack([s.pop("ok") for s in update_stats])
      state = finish(state, stats["kl"], jnp.min(oks))
      mean = {k: jnp.mean(jnp.stack([s[k] for s in update_stats])) for k in update_stats[0]}
      generated = float(stats["response_length"]) * b
      metrics = {**stats, **mean, "first_ratio_max_dev": update_stats[0]["ratio_max_dev"],
                 "loss": mean["policy_loss"] + mean["value_loss"], "kl_coef": state.extra["kl_coef"],
                 "lr": lr_schedule(state.step), "gen_tokens_per_sec": generated / max(gen_time, 1e-9),
                 "bad_streak": state.bad_streak, "skipped": 1 - jnp.min(oks)}
      return state, metrics

    self._programs = (generate, experience, updates[False], mini_batch)
    return step

  def programs(self, step, abstract_state, batch):
    """Thunks compiling every jitted piece of one step for the mesh (AOT, no data)."""
    generate, experience, update, mini_batch = self._programs
    p, frozen = self.p, self.frozen
    pt, pv = batch["prompt_tokens"], batch["prompt_valid"]
    b = pt.shape[0]
    step_abs = jax.ShapeDtypeStruct((), jnp.int32)
    answers = jax.ShapeDtypeStruct((b, p.max_answer_len), jnp.int32, sharding=pt.sharding)
    done = jax.ShapeDtypeStruct((b,), jnp.bool_, sharding=pt.sharding)
    kl = jax.ShapeDtypeStruct((), jnp.float32)
    args = (abstract_state.params, frozen["ref_params"], frozen["rm_params"], kl, pt, pv, answers, done)
    exp = jax.eval_shape(experience, *args)[0]
    exp.update({f"ptx_{k}": batch[f"ptx_{k}"] for k in PTX_KEYS if f"ptx_{k}" in batch})
    idx = jax.ShapeDtypeStruct((b // p.mini_batches,), jnp.int32)
    rows = lambda a: NamedSharding(pt.sharding.mesh, PartitionSpec(pt.sharding.spec[0]))  # noqa: E731
    mb = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=rows(a) if a.ndim else None),
                      jax.eval_shape(mini_batch, exp, idx))
    actor = abstract_state.params["actor"]
    if self.layout is not None:
      lay = self.layout
      actor = jax.tree.map(lambda a, sh: jax.ShapeDtypeStruct(
          a.shape, lay.dtype if jnp.issubdtype(a.dtype, jnp.floating) else a.dtype, sharding=sh), actor,
          lay.param_shardings)
      pt, pv = (jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=lay.rows) for a in (pt, pv))
      step_abs = jax.ShapeDtypeStruct((), jnp.int32, sharding=lay.replicated)
    return {"rollout": lambda: generate.lower(actor, pt, pv, step_abs).compile(),
            "experience": lambda: experience.lower(*args).compile(),
            "update": lambda: update.lower(abstract_state, mb).compile()}


def _update_means(m: dict) -> dict:
  """One update's summed statistics -> means over its response tokens."""
  n = jnp.maximum(m["tokens"], 1.0)
  out = {"policy_loss": m["policy_loss_sum"] / n, "value_loss": m["value_loss_sum"] / n,
         "policy_clipfrac": m["policy_clipfrac_sum"] / n, "approx_kl": m["approx_kl_sum"] / n,
         "ratio_max_dev": m["ratio_dev_max"], "value_clipfrac": m["value_clipfrac_sum"] / n,
         "grad_norm": m["grad_norm"], "ok": m["ok"]}
  if "ptx_nll_sum" in m:
    out["ptx_loss"] = m["ptx_nll_sum"] / jnp.maximum(m["ptx_count_sum"], 1.0)
  return out
