"""A LoRA model out to Hugging Face: merged into plain weights, or as a PEFT adapter.

`merged` folds each adapter into its projection (W + alpha/r * A B, in float32; a QLoRA base is
dequantised first), giving a plain model that `export_hf` writes as `LlamaForCausalLM`.
`export_adapter` writes what `peft.PeftModel.from_pretrained(base, DIR)` reads: `adapter_config.json`
and `adapter_model.safetensors` with PEFT's names
(`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` [rank, in], `lora_B` [out, rank]).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors.numpy import save_file

from xy_jax.convert.hf import unflatten
from xy_jax.errors import ConversionError
from xy_jax.convert.hf_config import write_json
from xy_jax.convert.hf_weights import LAYER_PREFIX
from xy_jax.io_utils import atomic_output_dir, check_output
from xy_jax.models import int_weights, lora
from xy_jax.models.factory import model_from_values, param_paths
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _projections(flat: dict) -> list[str]:
  """Module paths that carry an adapter ('model.layers.self_attn.q_proj', 'lm_head')."""
  return sorted(name[:-len(".lora_a")] for name in flat if name.endswith(".lora_a"))


def _float_weight(flat: dict, module: str, dtype) -> jax.Array:
  """A projection's weight in float (a quantised one dequantised)."""
  w = flat[f"{module}.weight"]
  if f"{module}.weight_scale" not in flat:
    return w
  scale = flat[f"{module}.weight_scale"]
  n_in = w.ndim - scale.ndim + 1  # scale: [groups, *out], w: [*contracted, *out] (same layer axes)
  deq = lambda q, s: int_weights.dequantize(q, s, n_in, jnp.float32)  # noqa: E731
  if module.startswith(LAYER_PREFIX):
    deq = jax.vmap(deq)
  return jax.jit(deq)(w, scale).astype(dtype)


def _n_in(flat: dict, module: str) -> int:
  lead = 1 if module.startswith(LAYER_PREFIX) else 0
  return flat[f"{module}.lora_a"].ndim - 1 - lead


def merged(model: nnx.Module, cfg: ModelConfig, sharding: LogicalSharding) -> tuple[ModelConfig, nnx.Module]:
  """(config, model) with every adapter folded in: no adapters, float weights."""
  if not cfg.lora_rank:
    return cfg, model
  flat = {k: v[...] for k, v in param_paths(nnx.state(model)).items()}
  modules = _projections(flat)
  dtype = jnp.dtype(cfg.param_dtype)
  fold = jax.jit(lora.merged_weight, static_argnums=(3, 4))
  values = {}
  for module in modules:
    n_in = _n_in(flat, module)
    w = _float_weight(flat, module, dtype)
    values[f"{module}.weight"] = fold(w, flat[f"{module}.lora_a"], flat[f"{module}.lora_b"], n_in,
                                      cfg.lora_scale)
  for name, v in flat.items():
    if name in values or lora.is_adapter_path(name) or name.endswith(".weight_scale"):
      continue
    values[name] = _float_weight(flat, name.rsplit(".", 1)[0], dtype) if name.endswith(".weight") else v
  plain = cfg.replace(lora_rank=0, quant="none")
  return plain, model_from_values(type(model), plain, sharding, unflatten(values))


def _to_hf(x: np.ndarray, in_dims: int) -> np.ndarray:
  """Ours [in..., out...] -> PEFT/torch Linear [out, in]."""
  return np.ascontiguousarray(x.reshape(math.prod(x.shape[:in_dims]), -1).T)


def adapter_tensors(model: nnx.Module, dtype: str = "float32") -> dict[str, np.ndarray]:
  """PEFT-named adapter tensors of a LoRA model."""
  flat = {k: v[...] for k, v in param_paths(nnx.state(model)).items()}
  np_dtype = jnp.dtype(dtype)
  out = {}
  for module in _projections(flat):
    n_in = _n_in(flat, module)
    a, b = np.asarray(flat[f"{module}.lora_a"]), np.asarray(flat[f"{module}.lora_b"])
    if module.startswith(LAYER_PREFIX):
      rest = module[len(LAYER_PREFIX):]
      per_layer = [(f"{LAYER_PREFIX}{i}.{rest}", a[i], b[i]) for i in range(a.shape[0])]
    else:
      per_layer = [(module, a, b)]
    for name, ai, bi in per_layer:
      out[f"base_model.model.{name}.lora_A.weight"] = _to_hf(ai, n_in).astype(np_dtype)
      out[f"base_model.model.{name}.lora_B.weight"] = _to_hf(bi, 1).astype(np_dtype)
  return out


def adapter_config(cfg: ModelConfig, base: str | None) -> dict:
  return {
      "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base,
      "r": cfg.lora_rank, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
      "target_modules": sorted(lora.targeted(cfg.lora_targets)), "bias": "none",
      "fan_in_fan_out": False, "use_rslora": False, "use_dora": False, "init_lora_weights": True,
      "inference_mode": True, "modules_to_save": None, "layers_to_transform": None,
  }


def export_adapter(model: nnx.Module, cfg: ModelConfig, out: str, base: str | None = None,
                   dtype: str = "float32", overwrite: bool = False, log=print) -> None:
  """A LoRA model's adapter -> a PEFT adapter directory (nothing at `out` on failure)."""
  if not cfg.lora_rank:
    raise ConversionError("--part adapter: this checkpoint has no LoRA adapters (lora.rank was 0)")
  check_output(out, overwrite)
  tensors = adapter_tensors(model, dtype)
  if jax.process_index() != 0:
    return
  with atomic_output_dir(out, overwrite) as tmp:
    save_file(tensors, os.path.join(tmp, ADAPTER_WEIGHTS), metadata={"format": "pt"})
    write_json(os.path.join(tmp, ADAPTER_CONFIG), adapter_config(cfg, base))
  size = sum(t.nbytes for t in tensors.values())
  log(f"wrote {out}: {len(tensors)} adapter tensors, {size / 2**20:.2f} MiB")
