"""PPO stage: actor, reference, critic and reward models on one mesh (../shared/rlhf.md).

One iteration (`step`): the actor samples answers for a batch of prompts with the KV-cache decoder
on its live parameters; with no gradients, the actor and reference log-probs, the critic values and
the reward-model score give per-token rewards (KL penalty + clipped score on the last token) and
GAE advantages; then `ppo_epochs` passes over `mini_batches` update actor and critic together
through one optax `multi_transform` (separate learning rates). Only actor and critic are trained
and checkpointed; reference and reward are frozen, reloaded from their checkpoints, and may be
held in bfloat16.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from ml_collections import ConfigDict

from xy_jax import checkpoint
from xy_jax.data.pipeline import EpochPlanner, SourceRows, StepBatches
from xy_jax.data.sources import SkipReport
from xy_jax.data.tokenizer import ChatTemplate, Tokenizer
from xy_jax.infer.generate import decode
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.loading import load_checkpoint
from xy_jax.models.model_config import ConfigError, ModelConfig
from xy_jax.models.presets import get_preset
from xy_jax.models.reward import RewardModel, sequence_scores
from xy_jax.rl import ppo_math
from xy_jax.rl.prompts import PromptSteps, read_prompts
from xy_jax.rl.rewards import RULES
from xy_jax.train.losses import lm_loss_sums
from xy_jax.train.stage import Stage
from xy_jax.train.optim import schedule

NUMERICS = ("dtype", "scan_layers", "remat_policy", "attention_impl")


class ActorCritic(nnx.Module):
  """The trained pair: `actor` (a causal LM) and `critic` (a value-head model), any two sizes."""

  def __init__(self, actor_cfg: ModelConfig, critic_cfg: ModelConfig, rngs: nnx.Rngs, sharding):
    self.actor = CausalLM(actor_cfg, rngs, sharding)
    self.critic = RewardModel(critic_cfg, rngs, sharding)


def ppo_optimizer(cfg: ConfigDict):
  """AdamW per model (actor and critic learning rates), warmup + schedule, global-norm clipping."""
  o, p = cfg.optim, cfg.ppo

  def adamw(lr):
    group = ConfigDict({**o.to_dict(), "lr": lr})
    sched = schedule(group, cfg.train.steps * p.ppo_epochs * p.mini_batches)
    return optax.chain(optax.clip_by_global_norm(o.clip_norm) if o.clip_norm > 0 else optax.identity(),
                       optax.adamw(sched, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)), sched

  actor_tx, actor_lr = adamw(p.actor_lr)
  critic_tx, _ = adamw(p.critic_lr)
  tx = optax.multi_transform({"actor": actor_tx, "critic": critic_tx},
                             {"actor": "actor", "critic": "critic"})  # a prefix of the params tree
  return tx, actor_lr


def _load(path: str, field: str, sharding, numerics: dict, log):
  if not path:
    raise ConfigError(f"{field}: required for stage 'ppo'")
  loaded = load_checkpoint(path, sharding, **numerics)
  log(f"{field}: {path} ({loaded.kind}, {loaded.cfg.param_count() / 1e6:.2f}M params)")
  return loaded


def _frozen(params, dtype: str):
  if dtype == "float32":
    return params
  return jax.jit(lambda p: jax.tree.map(lambda x: x.astype(dtype), p))(params)


def _abstract_frozen(cls, cfg: ModelConfig, sharding, dtype: str):
  """(graphdef, ShapeDtypeStruct params with shardings) of a frozen model: planning only."""
  from xy_jax.models.factory import abstract_model, state_shardings
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  target = checkpoint.abstract_pure_params(abs_state, state_shardings(abs_state, sharding))
  cast = lambda a: jax.ShapeDtypeStruct(a.shape, dtype if dtype != "float32" else a.dtype,  # noqa: E731
                                        sharding=a.sharding)
  return graphdef, jax.tree.map(cast, target)


def build(cfg: ConfigDict, model_cfg: ModelConfig, tok: Tokenizer | None, sharding, log) -> Stage:
  """`tok=None` builds the stage for planning: shapes from the config (`model`, `ppo.critic_preset`),
  no checkpoint or prompt is read."""
  p = cfg.ppo
  dp_size = sharding.mesh.shape["data"] * sharding.mesh.shape["fsdp"]
  numerics = {k: getattr(model_cfg, k) for k in NUMERICS}
  if p.reward_fn is not None and p.reward_fn not in RULES:
    raise ConfigError(f"ppo.reward_fn={p.reward_fn!r}: choose one of {sorted(RULES)}")
  if p.prompts_per_step % (dp_size * p.mini_batches) or p.prompts_per_step % jax.process_count():
    raise ConfigError(f"ppo.prompts_per_step={p.prompts_per_step}: must divide by data-parallel "
                      f"size {dp_size} x ppo.mini_batches={p.mini_batches}")
  seq_len = p.max_prompt_len + p.max_answer_len
  critic_path = p.critic_checkpoint or p.reward_checkpoint
  reward_norm = None  # (mean, std) of the reward model's held-out scores, when normalising

  if tok is None:  # planning
    actor_cfg = model_cfg
    critic_cfg = get_preset(p.critic_preset, **numerics) if p.critic_preset else actor_cfg
    ref_graph, ref_params = _abstract_frozen(CausalLM, actor_cfg, sharding, p.frozen_dtype)
    rm_graph, rm_params = (None, None) if p.reward_fn else _abstract_frozen(
        RewardModel, critic_cfg, sharding, p.frozen_dtype)
    eos, pad = actor_cfg.eos_token_id, actor_cfg.pad_token_id
  else:
    if not p.actor_checkpoint:
      raise ConfigError("ppo.actor_checkpoint: required for stage 'ppo' (an SFT checkpoint)")
    if not critic_path:
      raise ConfigError("ppo.critic_checkpoint: required (or ppo.reward_checkpoint, its default)")
    if p.reward_fn is None and not p.reward_checkpoint:
      raise ConfigError("ppo.reward_checkpoint: required unless ppo.reward_fn names a rule reward")
    actor_meta = checkpoint.load_meta(p.actor_checkpoint)
    actor_cfg = checkpoint.model_config_from_meta(actor_meta, p.actor_checkpoint).replace(**numerics)
    critic_cfg = checkpoint.model_config_from_meta(
        checkpoint.load_meta(critic_path), critic_path).replace(**numerics)
    reference = _load(p.actor_checkpoint, "ppo.actor_checkpoint (reference)", sharding, numerics, log)
    ref_graph, ref_params = nnx.split(reference.model)
    ref_params = _frozen(nnx.to_pure_dict(ref_params), p.frozen_dtype)
    if p.reward_fn is None:
      reward = _load(p.reward_checkpoint, "ppo.reward_checkpoint", sharding, numerics, log)
      if reward.kind != "reward":
        raise ConfigError(f"ppo.reward_checkpoint: {p.reward_checkpoint} holds a {reward.kind} "
                          f"model, not a reward model")
      rm_graph, rm_params = nnx.split(reward.model)
      rm_params = _frozen(nnx.to_pure_dict(rm_params), p.frozen_dtype)
      if p.normalize_reward:
        reward_norm = held_out_score_stats(checkpoint.load_meta(p.reward_checkpoint),
                                           p.reward_checkpoint)
        log(f"ppo.normalize_reward: scores become (score - {reward_norm[0]:.4f}) / "
            f"{reward_norm[1]:.4f}, the reward model's held-out statistics")
    else:
      rm_graph = rm_params = None
    eos, pad = tok.eos_id, tok.pad_id
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
      out.update({f"ptx_{k}": ((b, seq_len), "int32") for k in ("tokens", "positions", "segment_ids",
                                                               "loss_mask")})
    return {f"prompts x {p.max_prompt_len} + answers x {p.max_answer_len}": out}

  def init_params(rs):
    actor = _load(p.actor_checkpoint, "ppo.actor_checkpoint (actor)", rs.sharding, numerics, log)
    critic = _load(critic_path, "ppo.critic_checkpoint", rs.sharding, numerics, log)
    critic_params = nnx.to_pure_dict(nnx.state(critic.model))
    if critic.kind != "reward":  # a chat model as critic: its body plus a fresh value head
      fresh = nnx.to_pure_dict(nnx.state(init_model(RewardModel, critic_cfg, rs.sharding, cfg.seed)))
      critic_params = {"model": critic_params["model"], "score": fresh["score"]}
      log("ppo.critic_checkpoint: a causal LM; its body gets a fresh value head")
    return {"actor": nnx.to_pure_dict(nnx.state(actor.model)), "critic": critic_params}

  def init_extra(params):
    extra = {"kl_coef": jnp.asarray(p.kl_ctl, jnp.float32)}
    if p.ema_beta > 0:
      extra["ema_actor"] = jax.tree.map(lambda x: x, params["actor"])
    return extra

  def extra_shardings(param_sh, replicated):
    out = {"kl_coef": replicated}
    if p.ema_beta > 0:
      out["ema_actor"] = param_sh["actor"]
    return out

  frozen = {"ref_graph": ref_graph, "ref_params": ref_params, "rm_graph": rm_graph,
            "rm_params": rm_params, "reward_norm": reward_norm}
  stage = Stage(
      name="ppo", model_cls=functools.partial(_actor_critic_factory, actor_cfg, critic_cfg),
      kind="ppo", loss_sums=None, train_source=None, eval_sets={}, model_config=actor_cfg,
      frozen=frozen,
      flops_per_token=lambda n: actor_cfg.flops_per_token(n) + critic_cfg.flops_per_token(n),
      meta={"critic_model": critic_cfg.to_dict(), "actor_checkpoint": p.actor_checkpoint,
            "critic_checkpoint": critic_path, "reward_checkpoint": p.reward_checkpoint,
            "reward_fn": p.reward_fn},
      summary=[f"ppo: {p.prompts_per_step} prompts per step, prompt <= {p.max_prompt_len} + answer <= "
               f"{p.max_answer_len} tokens; actor {actor_cfg.param_count() / 1e6:.2f}M, critic "
               f"{critic_cfg.param_count() / 1e6:.2f}M params; reward: "
               f"{p.reward_fn or p.reward_checkpoint or p.critic_preset}"],
      summarize=lambda m: m, tokens_in_batch=lambda b: int(b["prompt_tokens"].shape[0]) * seq_len,
      build_optimizer=ppo_optimizer, init_params=init_params, init_extra=init_extra,
      extra_shardings=extra_shardings, plan_batches=plan_batches,
      build_step=lambda rs: make_ppo_step(rs, actor_cfg, eos, pad, frozen))
  if tok is None:
    return stage

  # --- data ------------------------------------------------------------------------------------
  d = cfg.data
  template = ChatTemplate(system=cfg.sft.system)
  report = SkipReport()
  prompts = []
  for name, src in d.sources.items():
    if src.get("format", "text") == "prompt":
      prompts += read_prompts(list(src.paths), f"data.sources.{name}.paths", tok, template,
                              p.max_prompt_len, report)
  if report.total:
    log(f"prompts: {report.summary()}")
    for example in report.examples:
      log(f"  skipped {example}")
  if len(prompts) < p.prompts_per_step:
    raise ConfigError(f"data.sources: {len(prompts)} usable prompts, fewer than ppo.prompts_per_step="
                      f"{p.prompts_per_step}")
  ptx = None
  if p.ptx_coef > 0:
    from xy_jax.train.pretrain import open_sources
    sub = ConfigDict(cfg.to_dict())
    sub.data.sources = {n: cfg.data.sources[n].to_dict() for n in text_sources}
    rows = [SourceRows(s, (seq_len,), "train", 0.0, cfg.seed) for s in open_sources(sub, tok, log)]
    planner = EpochPlanner(rows, [sub.data.sources[n].get("weight", 1.0) for n in text_sources],
                           (seq_len,), seq_len * p.prompts_per_step, cfg.seed)
    ptx = StepBatches(planner, tok.pad_id, cfg.train.steps, jax.process_index(), jax.process_count())
  stage.train_source = PromptSteps(prompts, p.prompts_per_step, p.max_prompt_len, tok.pad_id, cfg.seed,
                                   cfg.train.steps, jax.process_index(), jax.process_count(), ptx,
                                   seq_len)
  stage.summary[0] = f"{len(prompts)} prompts; " + stage.summary[0]
  return stage


def _actor_critic_factory(actor_cfg, critic_cfg, cfg, rngs, sharding):
  del cfg
  return ActorCritic(actor_cfg, critic_cfg, rngs, sharding)


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


def _response_slice(x, prompt_len: int, answer_len: int):
  """Outputs at the positions that predict answer tokens 0..N-1 (the last prompt token onwards)."""
  return x[:, prompt_len - 1:prompt_len - 1 + answer_len]


def make_ppo_step(rs, actor_cfg: ModelConfig, eos: int, pad: int, frozen: dict):
  cfg, p = rs.cfg, rs.cfg.ppo
  P, N = p.max_prompt_len, p.max_answer_len
  sampling = SamplingConfig(greedy=False, temperature=p.temperature, top_p=p.top_p, max_new_tokens=N)
  graphdef, tx = rs.graphdef, rs.tx
  base_rng = jax.random.key(cfg.seed)

  @jax.jit
  def rollout(params, prompt_tokens, prompt_valid, step):
    model = nnx.merge(graphdef, params).actor  # the live actor: no copy of its weights
    return decode(model, prompt_tokens, prompt_valid, jax.random.fold_in(base_rng, step), sampling,
                  eos, pad)

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
    tokens, positions, seg, mask = sequence(prompt_tokens, prompt_valid, answers, done)
    m = nnx.merge(graphdef, params)
    logits, _ = m.actor(tokens, positions, seg)
    logp, entropy = ppo_math.response_logprobs(_response_slice(logits, P, N), answers, p.temperature)
    ref_logits, _ = nnx.merge(frozen["ref_graph"], ref_params)(tokens, positions, seg)
    logp_ref, _ = ppo_math.response_logprobs(_response_slice(ref_logits, P, N), answers, p.temperature)
    values, _ = m.critic(tokens, positions, seg)
    values = _response_slice(values, P, N)
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

  def losses(params, mb, first: bool):
    m = nnx.merge(graphdef, params)
    logits, _ = m.actor(mb["tokens"], mb["positions"], mb["segment_ids"])
    logp, _ = ppo_math.response_logprobs(_response_slice(logits, P, N), mb["answers"], p.temperature)
    # Before any update the policy *is* the old policy: ratios are exactly 1, not 1 +- rounding.
    old = jax.lax.stop_gradient(logp) if first else mb["logp"]
    pg_loss, pstats = ppo_math.policy_loss(logp, old, mb["advantages"], mb["mask"], p.cliprange)
    values, _ = m.critic(mb["tokens"], mb["positions"], mb["segment_ids"])
    v_loss, vstats = ppo_math.value_loss(_response_slice(values, P, N), mb["values"], mb["returns"],
                                         mb["mask"], p.cliprange_value)
    total = pg_loss + v_loss
    stats = {"policy_loss": pg_loss, "value_loss": v_loss, **pstats, **vstats}
    if p.ptx_coef > 0:
      ptx_logits, _ = m.actor(mb["ptx_tokens"], mb["ptx_positions"], mb["ptx_segment_ids"])
      sums = lm_loss_sums(ptx_logits, mb["ptx_tokens"], mb["ptx_loss_mask"])
      ptx_loss = sums["nll_sum"] / jnp.maximum(sums["count"], 1.0)
      total = total + p.ptx_coef * ptx_loss
      stats["ptx_loss"] = ptx_loss
    return total, stats

  @functools.partial(jax.jit, donate_argnums=0, static_argnames=("first",))
  def update(state, mb, first: bool):
    (total, stats), grads = jax.value_and_grad(losses, has_aux=True)(state.params, mb, first)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    warm = state.step < p.critic_warmup_steps  # critic warm-up: the actor stays put
    params = {"actor": jax.tree.map(lambda new, old: jnp.where(warm, old, new), params["actor"],
                                    state.params["actor"]), "critic": params["critic"]}
    grad_norm = optax.tree.norm(grads)
    ok = jnp.isfinite(total) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
    state = dataclass_replace(state, params=keep(params, state.params),
                              opt_state=keep(opt_state, state.opt_state))
    return state, {**stats, "grad_norm": grad_norm, "ok": ok.astype(jnp.int32)}

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
    return dataclass_replace(state, step=state.step + 1, extra=extra,
                             bad_streak=jnp.where(bad > 0, state.bad_streak + 1, 0),
                             bad_total=state.bad_total + bad)

  slice_mb = jax.jit(lambda exp, idx: jax.tree.map(lambda x: x[idx], exp))

  def step(state, batch):
    prompt_tokens, prompt_valid = batch["prompt_tokens"], batch["prompt_valid"]
    start = time.perf_counter()
    answers, done = rollout(state.params, prompt_tokens, prompt_valid, state.step)
    jax.block_until_ready(answers)
    gen_time = time.perf_counter() - start
    exp, stats = experience(state.params, frozen["ref_params"], frozen["rm_params"],
                            state.extra["kl_coef"], prompt_tokens, prompt_valid, answers, done)
    for k in ("tokens", "positions", "segment_ids", "loss_mask"):
      if f"ptx_{k}" in batch:
        exp[f"ptx_{k}"] = batch[f"ptx_{k}"]
    b = p.prompts_per_step
    per_mb = b // p.mini_batches
    update_stats = []
    for epoch in range(p.ppo_epochs):
      order = np.random.default_rng([cfg.seed, int(jax.device_get(state.step)), epoch]).permutation(b) \
          if p.mini_batches > 1 else np.arange(b)
      for k in range(p.mini_batches):
        idx = np.sort(order[k * per_mb:(k + 1) * per_mb])
        mb = exp if p.mini_batches == 1 else slice_mb(exp, idx)
        state, s = update(state, mb, first=(epoch == 0 and k == 0))
        update_stats.append(s)
    oks = jnp.stack([s.pop("ok") for s in update_stats])
    state = finish(state, stats["kl"], jnp.min(oks))
    mean = {k: jnp.mean(jnp.stack([s[k] for s in update_stats])) for k in update_stats[0]}
    first_ratio = update_stats[0]["ratio_max_dev"]
    generated = float(stats["response_length"]) * b
    metrics = {**stats, **mean, "first_ratio_max_dev": first_ratio,
               "loss": mean["policy_loss"] + mean["value_loss"], "kl_coef": state.extra["kl_coef"],
               "lr": rs.lr_schedule(state.step), "gen_tokens_per_sec": generated / max(gen_time, 1e-9),
               "bad_streak": state.bad_streak, "skipped": 1 - jnp.min(oks)}
    return state, metrics

  def plan(abstract_state, batch):
    """Thunks that compile every jitted piece of one iteration for the mesh (AOT, no data)."""
    pt, pv = batch["prompt_tokens"], batch["prompt_valid"]
    b = pt.shape[0]
    step_abs = jax.ShapeDtypeStruct((), jnp.int32)
    answers = jax.ShapeDtypeStruct((b, N), jnp.int32, sharding=pt.sharding)
    done = jax.ShapeDtypeStruct((b,), jnp.bool_, sharding=batch["prompt_tokens"].sharding)
    kl = jax.ShapeDtypeStruct((), jnp.float32)
    compiled = {"rollout": lambda: rollout.lower(abstract_state.params, pt, pv, step_abs).compile()}
    compiled["experience"] = lambda: experience.lower(
        abstract_state.params, frozen["ref_params"], frozen["rm_params"], kl, pt, pv, answers,
        done).compile()
    exp_shapes = jax.eval_shape(experience, abstract_state.params, frozen["ref_params"],
                                frozen["rm_params"], kl, pt, pv, answers, done)[0]
    mb = jax.tree.map(lambda a: jax.ShapeDtypeStruct((a.shape[0] // p.mini_batches,) + a.shape[1:],
                                                     a.dtype, sharding=pt.sharding if a.ndim == 2 else None),
                      exp_shapes)
    for k in ("tokens", "positions", "segment_ids", "loss_mask"):
      if f"ptx_{k}" in batch:
        mb[f"ptx_{k}"] = batch[f"ptx_{k}"]
    compiled["update"] = lambda: update.lower(abstract_state, mb, first=False).compile()
    return compiled

  step.plan = plan
  return step


def dataclass_replace(state, **kw):
  return dataclasses.replace(state, **kw)
