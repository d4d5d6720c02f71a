"""Run configs: the full field set with defaults (`base_config`) and validation (`validate`).

Experiment files in `configs/` start from `base_config()` and change what differs; every field can
be overridden from the command line (`--config.optim.lr=1e-4`). `validate` stops at the first bad
field with one line naming it.
"""

from __future__ import annotations

import ml_collections
from ml_collections import ConfigDict

from xy_jax.models.lora import targeted
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.models.presets import get_preset

SCHEDULES = ("cosine", "linear", "constant")


# Model fields that may be None: a typed placeholder keeps them overridable from the command line
# (ml_collections cannot parse a flag for a field whose value is a bare None).
OPTIONAL_MODEL_FIELDS = {"head_dim": int, "rope_scaling": dict}


def model_config(preset: str, **overrides) -> ConfigDict:
  d = get_preset(preset, **overrides).to_dict()
  for name, kind in OPTIONAL_MODEL_FIELDS.items():
    if d[name] is None:
      d[name] = ml_collections.config_dict.placeholder(kind)
  return ConfigDict(d)


def base_config() -> ConfigDict:
  c = ConfigDict()
  c.stage = "pretrain"
  c.seed = 0
  c.model = model_config("xuanyuan2_70b")  # defaults describe the XuanYuan2 recipe
  # Start from an HF directory or an xy_jax checkpoint instead of random weights (None: random).
  c.init_from_hf = ml_collections.config_dict.placeholder(str)
  c.init_from_checkpoint = ml_collections.config_dict.placeholder(str)
  # Model fields taken from this config rather than from the starting weights (context extension:
  # "max_position_embeddings", "rope_theta", "rope_scaling"); the shape always comes from them.
  c.model_from_config = ()

  c.mesh = ConfigDict({"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": 1})
  # Overrides of the logical-axis rules: name -> tuple of mesh axes (() = replicated), e.g.
  # {"vocab": ()} when the vocabulary does not divide the tensor axis (XuanYuan's 39438).
  c.mesh.rules = ConfigDict()

  c.data = ConfigDict()
  c.data.tokenizer = ml_collections.config_dict.placeholder(str)  # None: the shipped tiny tokenizer
  c.data.prepared_dir = "runs/data"
  c.data.auto_prepare = False  # tokenize missing sources at start (small data only)
  # SFT examples and PPO prompts without exact and near duplicates ("near"), exact ones only
  # ("exact") or all ("off"); see xy_jax/data/clean/prompts.py (needs the clean extra).
  c.data.dedup_prompts = "near"
  c.data.sources = ConfigDict()  # name -> {paths: [...], weight: float}
  c.data.buckets = (2048, 4096, 8192, 16384)
  c.data.bucket_weights = ml_collections.config_dict.placeholder(tuple)  # None: by remaining tokens
  # Mixture weights that change during the run: ((step, {source: weight}), ...), steps increasing,
  # every source weighted in every entry (0 leaves one out); before the first step the sources'
  # own weights apply. Each segment is planned on its own.
  c.data.mixture_schedule = ()
  c.data.tokens_per_step = 16384 * 64
  c.data.eval_fraction = 0.01
  c.data.eval_rows = 64
  c.data.eval_length = ml_collections.config_dict.placeholder(int)  # None: smallest bucket
  c.data.prefetch = 2

  c.sft = ConfigDict()
  c.sft.system = ml_collections.config_dict.placeholder(str)  # system message (70B style)
  c.sft.truncation = "drop_rounds"  # or "skip": conversations longer than the row

  # Reward model (stage "reward"): "last_token" pairwise loss on the final scores, or
  # "token_contrastive", DeepSpeed-Chat's token-level loss that XuanYuan-6B's reward model used.
  c.reward = ConfigDict()
  c.reward.loss = "last_token"

  # DPO (stage "dpo"): TRL's names and defaults.
  c.dpo = ConfigDict()
  c.dpo.beta = 0.1
  c.dpo.loss = "sigmoid"  # "sigmoid" (DPO), "ipo" or "hinge"
  c.dpo.label_smoothing = 0.0  # conservative DPO (sigmoid only)
  c.dpo.reference_checkpoint = ml_collections.config_dict.placeholder(str)  # None: init_from_checkpoint
  c.dpo.reference_dtype = "bfloat16"

  # PPO (stage "ppo"); defaults are DeepSpeed-Chat's (../shared/rlhf.md).
  c.ppo = ConfigDict()
  c.ppo.actor_checkpoint = ml_collections.config_dict.placeholder(str)  # SFT: actor and reference
  c.ppo.reward_checkpoint = ml_collections.config_dict.placeholder(str)  # frozen reward model
  c.ppo.critic_checkpoint = ml_collections.config_dict.placeholder(str)  # None: the reward model
  c.ppo.reward_fn = ml_collections.config_dict.placeholder(str)  # a rule reward instead of the RM
  c.ppo.critic_preset = ml_collections.config_dict.placeholder(str)  # critic/reward shape for plans
  c.ppo.critic_preset_layers = ml_collections.config_dict.placeholder(int)  # plans: its layers (probes)
  # Where rollouts decode: "auto" (a serving layout: weights over `tensor` only, prompts over
  # `data`; xy_jax/rl/rollout_layout.py), "train" (the training layout) or "data,fsdp,tensor".
  c.ppo.rollout_mesh = "auto"
  c.ppo.prompts_per_step = 64
  c.ppo.max_prompt_len = 256
  c.ppo.max_answer_len = 256
  c.ppo.temperature = 1.0
  c.ppo.top_p = 1.0
  c.ppo.kl_ctl = 0.1
  c.ppo.kl_target = ml_collections.config_dict.placeholder(float)  # None: fixed kl_ctl
  c.ppo.kl_horizon = 10000.0
  c.ppo.kl_estimator = "k1"
  c.ppo.clip_reward_value = 5.0
  # Normalise RM scores by the RM's held-out mean/std (stored in its checkpoint at eval time).
  c.ppo.normalize_reward = False
  c.ppo.no_eos_penalty = 0.0
  c.ppo.gamma = 1.0
  c.ppo.lam = 0.95
  c.ppo.whiten_advantages = False
  c.ppo.ppo_epochs = 1
  c.ppo.mini_batches = 1
  c.ppo.cliprange = 0.2
  c.ppo.cliprange_value = 0.2
  c.ppo.ptx_coef = 0.0
  c.ppo.ema_beta = 0.0  # 0.992 keeps an EMA copy of the actor
  c.ppo.critic_warmup_steps = 0
  c.ppo.actor_lr = 9.65e-6
  c.ppo.critic_lr = 5e-6
  c.ppo.frozen_dtype = "bfloat16"  # reference and reward models

  c.optim = ConfigDict()
  c.optim.lr = 3e-4
  c.optim.schedule = "cosine"
  c.optim.warmup_steps = 100
  c.optim.min_lr_ratio = 0.1
  c.optim.b1 = 0.9
  c.optim.b2 = 0.95
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.1
  c.optim.clip_norm = 1.0
  c.optim.grad_accum = 1
  c.optim.z_loss = 0.0
  # A regex over parameter paths (e.g. "embed_tokens|lm_head"): only those train; the others get
  # no gradient and no optimizer state and stay bit-identical. Empty: everything trains.
  c.optim.trainable = ""
  c.optim.frozen_dtype = ml_collections.config_dict.placeholder(str)  # e.g. "bfloat16" for frozen

  # LoRA (stages pretrain, sft, dpo; the actor in ppo): adapters on the projections `targets` names (a regex fully
  # matched against q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head); the
  # base is frozen (no gradient, no optimizer state, bit-identical), optionally held quantised
  # (`base_quant`: QLoRA); checkpoints hold the adapters and name the base. rank 0: off.
  c.lora = ConfigDict()
  c.lora.rank = 0
  c.lora.alpha = 16.0
  c.lora.dropout = 0.05
  c.lora.targets = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"
  c.lora.base_quant = "none"  # "int8" or "int4": the frozen base held as integers

  c.train = ConfigDict()
  c.train.steps = 1000
  c.train.log_every = 10
  c.train.eval_every = 200
  c.train.checkpoint_every = 200
  c.train.keep_checkpoints = 3
  c.train.keep_best = True  # also keep the checkpoint with the lowest eval loss
  c.train.max_bad_steps = 5  # stop after this many non-finite losses in a row
  c.train.peak_flops_per_device = 0.0  # for MFU; 0: unknown, MFU not reported
  c.train.async_checkpointing = True
  # Benchmarks scored on the live parameters every eval_every steps (bench/<task>/acc), e.g.
  # ({"task": "cmmlu", "data_dir": "data/cmmlu", "subjects": ("economics",), "limit": 200},); the
  # fields are tools/evaluate.py's (task, data_dir, split, mode, shots, subjects, limit, ...).
  c.train.eval_tasks = ()
  return c


def require(path: str, ok: bool, msg: str) -> None:
  """Stops with one line naming the config field when `ok` is false (stage validators use it too)."""
  if not ok:
    raise ConfigError(f"{path}: {msg}")


def _number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_mixture_schedule(schedule, sources: list[str]) -> None:
  """Each entry gives every source its weight: nothing carries over (a source left out would drop
  to 0 unnoticed). Steps past train.steps are allowed (a run may be resumed with more steps);
  the stage logs them."""
  previous = -1
  for i, entry in enumerate(schedule):
    where = f"data.mixture_schedule[{i}]"
    require(where, isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], int)
           and not isinstance(entry[0], bool) and isinstance(entry[1], (dict, ConfigDict)),
           f"{entry!r}: expected (step, {{source: weight}}) with an integer step")
    step, weights = entry
    require(where, step > previous, f"step {step} does not follow step {previous}")
    previous = step
    unknown = sorted(set(weights) - set(sources))
    require(where, not unknown, f"{unknown[0] if unknown else ''!r} is not a source in data.sources")
    missing = [n for n in sources if n not in weights]
    require(where, not missing, f"no weight for source {missing[0] if missing else ''!r}: give every "
           "source of data.sources its weight (0 leaves it out)")
    require(where, all(_number(w) and w >= 0 for w in weights.values()) and sum(weights.values()) > 0,
           f"{dict(weights)!r}: weights must be numbers >= 0, not all 0")


def validate(c: ConfigDict) -> ModelConfig:
  """Check the common sections (model, mesh, data, optim, lora, train); returns the typed model
  config. Each stage checks its own section with the validator it registers (train.task.register)."""
  require("stage", isinstance(c.stage, str) and bool(c.stage), f"{c.stage!r}: a registered stage's name")
  model = ModelConfig.from_dict(c.model, field="model")
  require("model.quant", model.quant == "none",
         f"{model.quant!r}: quantised weights are for inference; train the float model and run "
         "tools/quantize.py on the result")
  for axis in ("data", "fsdp", "tensor"):
    v = c.mesh[axis]
    require(f"mesh.{axis}", isinstance(v, int) and (v > 0 or v == -1), f"{v!r}: a positive size or -1")
  d = c.data
  buckets = tuple(d.buckets)
  require("data.buckets", len(buckets) > 0 and all(isinstance(b, int) and b > 0 for b in buckets),
         f"{buckets!r}: positive row lengths")
  require("data.buckets", max(buckets) <= model.max_position_embeddings,
         f"largest bucket {max(buckets)} exceeds model.max_position_embeddings="
         f"{model.max_position_embeddings}")
  for b in buckets:
    require("data.tokens_per_step", d.tokens_per_step % b == 0,
           f"{d.tokens_per_step} is not a multiple of bucket length {b}")
    rows = d.tokens_per_step // b
    require("data.tokens_per_step", rows % c.optim.grad_accum == 0,
           f"bucket {b} gives {rows} rows per step, not divisible by optim.grad_accum="
           f"{c.optim.grad_accum}")
  if d.bucket_weights is not None:
    require("data.bucket_weights", len(d.bucket_weights) == len(buckets) and
           all(w >= 0 for w in d.bucket_weights) and sum(d.bucket_weights) > 0,
           f"{d.bucket_weights!r}: one non-negative weight per bucket, not all zero")
  require("data.sources", len(d.sources) > 0, "no sources configured")
  for name, src in d.sources.items():
    require(f"data.sources.{name}.paths", "paths" in src and len(src.paths) > 0, "missing or empty")
    require(f"data.sources.{name}.weight", src.get("weight", 1.0) >= 0, "must be >= 0")
  require("data.sources", sum(s.get("weight", 1.0) for s in d.sources.values()) > 0, "all weights are 0")
  _check_mixture_schedule(d.mixture_schedule, list(d.sources))
  for name, src in d.sources.items():
    require(f"data.sources.{name}.format",
           src.get("format", "text") in ("text", "sft", "preference", "prompt"),
           f"{src.get('format')!r} is not 'text', 'sft', 'preference' or 'prompt'")
  require("data.dedup_prompts", d.dedup_prompts in ("near", "exact", "off"),
         f"{d.dedup_prompts!r} is not 'near', 'exact' or 'off'")
  require("sft.truncation", c.sft.truncation in ("drop_rounds", "skip"),
         f"{c.sft.truncation!r} is not 'drop_rounds' or 'skip'")
  require("data.eval_fraction", 0 <= d.eval_fraction < 1, f"{d.eval_fraction}: in [0, 1)")
  if d.eval_length is not None:
    require("data.eval_length", d.eval_length in buckets, f"{d.eval_length} is not one of data.buckets")
  require("train.steps", c.train.steps > 0, "must be positive")
  o = c.optim
  require("optim.schedule", o.schedule in SCHEDULES, f"{o.schedule!r} is not one of {SCHEDULES}")
  require("optim.lr", o.lr > 0, f"{o.lr}: must be > 0")
  require("optim.grad_accum", isinstance(o.grad_accum, int) and o.grad_accum >= 1, "an integer >= 1")
  require("optim.warmup_steps", 0 <= o.warmup_steps <= c.train.steps,
         f"{o.warmup_steps}: between 0 and train.steps={c.train.steps}")
  require("optim.min_lr_ratio", 0 <= o.min_lr_ratio <= 1, f"{o.min_lr_ratio}: in [0, 1]")
  require("optim.frozen_dtype", o.frozen_dtype in (None, "float32", "bfloat16", "float16"),
         f"{o.frozen_dtype!r}: float32, bfloat16 or float16")
  require("optim.frozen_dtype", o.frozen_dtype is None or bool(o.trainable) or c.lora.rank > 0,
         "set only with optim.trainable or lora.rank (otherwise nothing is frozen)")
  lo = c.lora
  require("lora.rank", isinstance(lo.rank, int) and lo.rank >= 0, f"{lo.rank!r}: an integer >= 0 (0: off)")
  if lo.rank:
    require("optim.trainable", not o.trainable, "leave empty with lora.rank > 0 (the adapters train)")
    require("lora.alpha", lo.alpha > 0, f"{lo.alpha}: must be > 0")
    require("lora.dropout", 0 <= lo.dropout < 1, f"{lo.dropout}: in [0, 1)")
    require("lora.base_quant", lo.base_quant in ("none", "int8", "int4"), f"{lo.base_quant!r}: none, int8 or int4")
    try:
      targeted(lo.targets, "lora.targets")
    except ValueError as e:
      raise ConfigError(str(e)) from None
  else:
    require("lora.base_quant", lo.base_quant == "none", "set only with lora.rank > 0")
  t = c.train
  for name in ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "max_bad_steps"):
    require(f"train.{name}", t[name] > 0, "must be positive")
  for name in c.model_from_config:
    require("model_from_config", name in ("max_position_embeddings", "rope_theta", "rope_scaling"),
           f"{name!r}: only max_position_embeddings, rope_theta and rope_scaling (the weights fix "
           "the shape)")
  require("init_from_hf", not (c.init_from_hf and c.init_from_checkpoint),
         "set at most one of init_from_hf and init_from_checkpoint")
  return model
