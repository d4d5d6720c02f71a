"""The weights a run starts from: random, a Hugging Face directory or one of our checkpoints."""

from __future__ import annotations

import os

from flax import nnx
from ml_collections import ConfigDict

from xy_jax import checkpoint
from xy_jax.models.factory import init_model
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import NUMERICS, ModelConfig


def start_overrides(cfg: ConfigDict, model_cfg: ModelConfig) -> dict:
  """The fields of `model_cfg` that apply over the starting weights' own config."""
  return {k: getattr(model_cfg, k) for k in NUMERICS + tuple(cfg.model_from_config)}


def initial_params(cfg: ConfigDict, model_cfg: ModelConfig, stage_cls, sharding, log):
  """Random init, or weights from init_from_hf / init_from_checkpoint.

  Parts the source lacks are freshly initialised and parts the target lacks are dropped, both
  logged: an SFT or causal-LM checkpoint gives a reward model its body with a new value head.
  The starting weights are pinned (checkpoint.run_pins): a LoRA run's resume reads the same ones.
  """
  if model_cfg.lora_rank:  # the float base as usual, then the adapters (and QLoRA's quantisation)
    from xy_jax.loading import with_adapters
    base_cfg, base = initial_params(cfg, model_cfg.replace(lora_rank=0, quant="none"), stage_cls,
                                    sharding, log)
    model_cfg = base_cfg.replace(**model_cfg.adapter_fields(), quant_group_size=model_cfg.quant_group_size)
    return model_cfg, with_adapters(stage_cls, model_cfg, base, sharding, cfg.seed,
                                    origin=_origin(cfg))
  numerics = start_overrides(cfg, model_cfg)
  if cfg.init_from_hf:
    from xy_jax.convert.hf import load_hf
    from xy_jax.convert.hf_config import model_kind
    checkpoint.run_pins().hf("init_from_hf", cfg.init_from_hf)
    kind = model_kind(os.path.join(cfg.init_from_hf, "config.json"))
    model_cfg, src = load_hf(cfg.init_from_hf, sharding, kind, model_cfg.param_dtype, log=log, **numerics)
    origin = cfg.init_from_hf
  elif cfg.init_from_checkpoint:
    from xy_jax.loading import load_source
    loaded = load_source("init_from_checkpoint", cfg.init_from_checkpoint, sharding, log, **numerics)
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


def _origin(cfg: ConfigDict) -> str:
  return f"init_from_hf: {cfg.init_from_hf}" if cfg.init_from_hf else \
      f"init_from_checkpoint: {cfg.init_from_checkpoint}"


def source_model_config(cfg: ConfigDict, model_cfg: ModelConfig) -> ModelConfig:
  """The model shape when starting from HF weights or a checkpoint is theirs, not the config's."""
  if cfg.init_from_hf:
    from xy_jax.convert.hf_config import model_config_from_hf
    return model_config_from_hf(os.path.join(cfg.init_from_hf, "config.json"),
                                param_dtype=model_cfg.param_dtype, **start_overrides(cfg, model_cfg))
  if cfg.init_from_checkpoint:
    meta = checkpoint.load_meta(cfg.init_from_checkpoint)
    src = checkpoint.model_config_from_meta(meta, cfg.init_from_checkpoint)
    if src.quant != "none":
      raise ConfigError(f"init_from_checkpoint={cfg.init_from_checkpoint}: a {src.quant} quantised "
                        "checkpoint cannot be trained; start from the float checkpoint")
    return src.replace(**start_overrides(cfg, model_cfg))
  return model_cfg
