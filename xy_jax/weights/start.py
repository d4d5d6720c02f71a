"""The weights a run starts from: random, a Hugging Face directory, one of our checkpoints, a LoRA
base with adapters (quantised for QLoRA), or PPO's actor and critic; and the other runs' models a
stage reads (`pinned_model`: PPO's reference and reward)."""

from __future__ import annotations

import os

from flax import nnx
from ml_collections import ConfigDict

from xy_jax.convert.hf import load_hf
from xy_jax.convert.hf_config import model_config_from_hf, model_kind
from xy_jax.errors import ConfigError
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import NUMERICS, ModelConfig
from xy_jax.models.reward import RewardModel
from xy_jax.weights import layout
from xy_jax.weights.load import LoadedModel, load_source
from xy_jax.weights.lora import with_adapters
from xy_jax.weights.pins import Pins

ACTOR_FIELD = "ppo.actor_checkpoint"
CRITIC_FIELD = "ppo.critic_checkpoint"
REWARD_FIELD = "ppo.reward_checkpoint"


def start_overrides(cfg: ConfigDict, model_cfg: ModelConfig) -> dict:
  """The fields of `model_cfg` that apply over the starting weights' own config."""
  return {k: getattr(model_cfg, k) for k in NUMERICS + tuple(cfg.model_from_config)}


def starting_weights(cfg: ConfigDict, model_cfg: ModelConfig, stage_cls, sharding, pins: Pins | None,
                     log, critic_cfg: ModelConfig | None = None) -> tuple[ModelConfig, dict]:
  """(model config, parameters pure dict) a run starts from: PPO's actor and critic (`critic_cfg`
  set), else random init or weights from init_from_hf / init_from_checkpoint.

  Parts the source lacks are freshly initialised and parts the target lacks are dropped, both
  logged: an SFT or causal-LM checkpoint gives a reward model its body with a new value head.
  The starting weights are pinned (`pins`): a LoRA run's resume reads the same ones.
  """
  if critic_cfg is not None:
    return _actor_critic(cfg, model_cfg, critic_cfg, sharding, pins, log)
  if model_cfg.lora_rank:  # the float base as usual, then the adapters (and QLoRA's quantisation)
    base_cfg, base = starting_weights(cfg, model_cfg.replace(lora_rank=0, quant="none"), stage_cls,
                                      sharding, pins, log)
    model_cfg = base_cfg.replace(**model_cfg.adapter_fields(), quant_group_size=model_cfg.quant_group_size)
    return model_cfg, with_adapters(stage_cls, model_cfg, base, sharding, cfg.seed,
                                    origin=_origin(cfg))
  numerics = start_overrides(cfg, model_cfg)
  if cfg.init_from_hf:
    (pins if pins is not None else Pins(log)).hf("init_from_hf", cfg.init_from_hf)
    kind = model_kind(os.path.join(cfg.init_from_hf, "config.json"))
    model_cfg, src = load_hf(cfg.init_from_hf, sharding, kind, model_cfg.param_dtype, log=log, **numerics)
    origin = cfg.init_from_hf
  elif cfg.init_from_checkpoint:
    loaded = load_source("init_from_checkpoint", cfg.init_from_checkpoint, sharding, pins, log, **numerics)
    model_cfg, src, origin = loaded.cfg, loaded.model, cfg.init_from_checkpoint
  else:
    model = init_model(stage_cls, model_cfg, sharding, seed=cfg.seed)
    return model_cfg, nnx.to_pure_dict(nnx.state(model))
  src_params = nnx.to_pure_dict(nnx.state(src))
  if isinstance(src, stage_cls):
    return model_cfg, src_params
  params = nnx.to_pure_dict(nnx.state(init_model(stage_cls, model_cfg, sharding, seed=cfg.seed)))
  for key in params:
    if key in src_params:
      params[key] = src_params[key]
    else:
      log(f"{key}: not in {origin}; freshly initialised")
  dropped = sorted(set(src_params) - set(params))
  if dropped:
    log(f"{', '.join(dropped)}: from {origin}, not used by this stage's model")
  return model_cfg, params


def _actor_critic(cfg: ConfigDict, model_cfg: ModelConfig, critic_cfg: ModelConfig, sharding,
                  pins: Pins | None, log) -> tuple[ModelConfig, dict]:
  """PPO's trained pair: the actor from ppo.actor_checkpoint (LoRA adapters on it when set), the
  critic from ppo.critic_checkpoint or ppo.reward_checkpoint (a causal LM's body gets a fresh value
  head)."""
  p, numerics = cfg.ppo, model_cfg.numerics()
  critic_path = p.critic_checkpoint or p.reward_checkpoint
  actor = pinned_model(p.actor_checkpoint, ACTOR_FIELD, sharding, pins, numerics, log, "actor")
  critic = pinned_model(critic_path, CRITIC_FIELD, sharding, pins, numerics, log)
  critic_params = nnx.to_pure_dict(nnx.state(critic.model))
  if critic.kind != "reward":  # a chat model as critic: its body plus a fresh value head
    fresh = nnx.to_pure_dict(nnx.state(init_model(RewardModel, critic_cfg, sharding, cfg.seed)))
    critic_params = {"model": critic_params["model"], "score": fresh["score"]}
    log("ppo.critic_checkpoint: a causal LM; its body gets a fresh value head")
  actor_params = nnx.to_pure_dict(nnx.state(actor.model))
  if model_cfg.lora_rank:  # adapters on the actor (its base frozen, held as lora.base_quant says)
    actor_params = with_adapters(CausalLM, model_cfg, actor_params, sharding, cfg.seed,
                                 origin=f"{ACTOR_FIELD}: {p.actor_checkpoint}")
  return model_cfg, {"actor": actor_params, "critic": critic_params}


def pinned_model(path: str, field: str, sharding, pins: Pins | None, numerics: dict, log,
                 role: str = "") -> LoadedModel:
  """The step of `path` the run pinned (`field` names it; `role` says what it is read as)."""
  if not path:
    raise ConfigError(f"{field}: required for stage 'ppo'")
  loaded = load_source(field, path, sharding, pins, log, **numerics)
  log(f"{field}{f' ({role})' if role else ''}: {path} step {loaded.step} ({loaded.kind}, "
      f"{loaded.cfg.param_count() / 1e6:.2f}M params)")
  return loaded


def _origin(cfg: ConfigDict) -> str:
  return f"init_from_hf: {cfg.init_from_hf}" if cfg.init_from_hf else \
      f"init_from_checkpoint: {cfg.init_from_checkpoint}"


def source_model_config(cfg: ConfigDict, model_cfg: ModelConfig) -> ModelConfig:
  """The model shape when starting from HF weights or a checkpoint is theirs, not the config's."""
  if cfg.init_from_hf:
    return model_config_from_hf(os.path.join(cfg.init_from_hf, "config.json"),
                                param_dtype=model_cfg.param_dtype, **start_overrides(cfg, model_cfg))
  if cfg.init_from_checkpoint:
    meta = layout.load_meta(cfg.init_from_checkpoint)
    src = layout.model_config_from_meta(meta, cfg.init_from_checkpoint)
    if src.quant != "none":
      raise ConfigError(f"init_from_checkpoint={cfg.init_from_checkpoint}: a {src.quant} quantised "
                        "checkpoint cannot be trained; start from the float checkpoint")
    return src.replace(**start_overrides(cfg, model_cfg))
  return model_cfg
