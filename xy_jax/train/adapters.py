"""LoRA runs (`config.lora`): the model config with adapters, what trains, what checkpoints hold.

A LoRA run is an `optim.trainable` run whose selection is the adapters: the base gets no gradient
and no optimizer state and is never written. Its checkpoints hold the adapters only (a small
fraction of the model) and name the base in their meta (`lora_base`: its path, and the step and
digest the run pinned, weights.pins.Pins), from which readers rebuild the model (weights/load.py).
"""

from __future__ import annotations

import os
from typing import Any

from ml_collections import ConfigDict

from xy_jax.models.int_weights import check_group_size
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig


def enabled(cfg: ConfigDict) -> bool:
  return bool(cfg.lora.rank)


def apply(cfg: ConfigDict, model_cfg: ModelConfig) -> ModelConfig:
  """`model_cfg` with the run's adapters and base quantisation (unchanged when LoRA is off).

  The shape comes from the starting weights, but a QLoRA base is quantised by this run: its int4
  group size is this config's `model.quant_group_size`, the field the group-size check names.
  """
  if not enabled(cfg):
    return model_cfg
  lo = cfg.lora
  out = model_cfg.replace(lora_rank=lo.rank, lora_alpha=float(lo.alpha), lora_dropout=float(lo.dropout),
                          lora_targets=lo.targets, quant=lo.base_quant)
  if lo.base_quant == "none":
    return out
  out = out.replace(quant_group_size=cfg.model.quant_group_size)
  check_group_size(out, "model.quant_group_size")
  return out


def base_reference(cfg: ConfigDict, required: bool = True) -> dict[str, str]:
  """Where the frozen base comes from (checkpoint meta `lora_base`): the starting weights; {} when
  planning (`required=False`) without them."""
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
