"""LoRA runs (`config.lora`): the model config with adapters, what trains, what checkpoints hold.

A LoRA run is an `optim.trainable` run whose selection is the adapters: the base gets no gradient
and no optimizer state and is never written. Its checkpoints hold the adapters only (a small
fraction of the model) and name the base in their meta (`lora_base`), from which readers rebuild
the model (`xy_jax.loading`).
"""

from __future__ import annotations

import os
from typing import Any

from ml_collections import ConfigDict

from xy_jax.models.model_config import ConfigError, ModelConfig

ADAPTER_PATTERN = r"\.lora_[ab]$"
# PPO: the actor's adapters and the whole critic train.
PPO_PATTERN = r"^actor\..*\.lora_[ab]$|^critic\."


def enabled(cfg: ConfigDict) -> bool:
  return bool(cfg.lora.rank)


def apply(cfg: ConfigDict, model_cfg: ModelConfig) -> ModelConfig:
  """`model_cfg` with the run's adapters and base quantisation (unchanged when LoRA is off)."""
  if not enabled(cfg):
    return model_cfg
  lo = cfg.lora
  return model_cfg.replace(lora_rank=lo.rank, lora_alpha=float(lo.alpha), lora_dropout=float(lo.dropout),
                           lora_targets=lo.targets, quant=lo.base_quant)


def trainable_pattern(cfg: ConfigDict) -> str:
  if not enabled(cfg):
    return cfg.optim.trainable
  return PPO_PATTERN if cfg.stage == "ppo" else ADAPTER_PATTERN


def base_reference(cfg: ConfigDict, required: bool = True) -> dict[str, str] | None:
  """Where the frozen base comes from (checkpoint meta `lora_base`); None when LoRA is off, {}
  when planning (`required=False`) without one."""
  if not enabled(cfg):
    return None
  if cfg.stage == "ppo":  # the actor's base; the critic is checkpointed whole
    path = cfg.ppo.actor_checkpoint
    return {"checkpoint": os.path.abspath(path), "part": "actor"} if path else {}
  if not (cfg.init_from_checkpoint or cfg.init_from_hf):
    if not required:
      return {}
    raise ConfigError("lora.rank: LoRA adapts existing weights; set init_from_checkpoint or init_from_hf")
  if cfg.init_from_checkpoint:
    return {"checkpoint": os.path.abspath(cfg.init_from_checkpoint)}
  return {"hf": os.path.abspath(cfg.init_from_hf)}


def overlay(params: Any, part: Any) -> Any:
  """`params` with the leaves of `part` (a sub-tree of it) put in."""
  if isinstance(part, dict):
    return {k: overlay(params[k], part[k]) if k in part else v for k, v in params.items()}
  return part
