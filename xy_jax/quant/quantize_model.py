"""Turn a float model into its weight-only quantised twin (same class, `cfg.quant` set)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from xy_jax.models.factory import abstract_model, param_paths, state_shardings
from xy_jax.models.llama import Weight
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.models import int_weights
from xy_jax.sharding import LogicalSharding


@dataclasses.dataclass(frozen=True)
class QuantizedModel:
  cfg: ModelConfig
  model: nnx.Module
  method: str = "rtn"  # how the codes were chosen: rtn (round to nearest) or gptq


def quantized_config(cfg: ModelConfig, mode: str, group_size: int | None) -> ModelConfig:
  """`cfg` with `quant=mode` (and --group_size when given), checked."""
  if cfg.quant != "none":
    raise ConfigError(f"model.quant={cfg.quant!r}: this model is already quantised")
  if mode not in ("int8", "int4"):
    raise ConfigError(f"--mode={mode!r}: choose int8 or int4")
  qcfg = cfg.replace(quant=mode, quant_group_size=cfg.quant_group_size if group_size is None
                     else group_size)
  qcfg.validate()
  # The tools pass their --group_size flag; a model's own config otherwise.
  int_weights.check_group_size(qcfg, "model.quant_group_size" if group_size is None else "--group_size")
  return qcfg


def quantize_model(model: nnx.Module, cfg: ModelConfig, mode: str, sharding: LogicalSharding,
                   group_size: int | None = None, codes: dict | None = None,
                   method: str = "rtn") -> QuantizedModel:
  """Quantise every quantizable projection of `model` (built from `cfg`) to `mode`.

  Stacked (scanned) layer weights are quantised per layer. Each tensor is converted on its own
  under jit, straight into the sharding the rules give it. `codes` ({'model.layers...q_proj':
  (codes, scales)}, as `calibrate` makes them) replace rounding to nearest where given.
  """
  qcfg = quantized_config(cfg, mode, group_size)
  codes = codes or {}
  cls = type(model)
  graphdef, abs_state = abstract_model(cls, qcfg, sharding)
  shardings = param_paths(state_shardings(abs_state, sharding)) if sharding.mesh is not None else {}
  targets = param_paths(abs_state)
  source = {k: v[...] for k, v in param_paths(nnx.state(model)).items()}

  values = {}
  for path, node in nnx.iter_graph(nnx.merge(graphdef, abs_state)):
    if not isinstance(node, Weight) or node.quant == "none":
      continue
    name = ".".join(str(p) for p in path)
    w = source.pop(f"{name}.weight")
    out_sh = (shardings.get(f"{name}.weight"), shardings.get(f"{name}.weight_scale"))
    if name in codes:
      q, scale = codes.pop(name)
      values[f"{name}.weight"] = jax.device_put(q, out_sh[0]) if shardings else q
      values[f"{name}.weight_scale"] = jax.device_put(
          scale.astype(qcfg.param_dtype), out_sh[1]) if shardings else scale.astype(qcfg.param_dtype)
      continue
    stacked = "layers" in path  # scanned layers carry a leading layer axis
    fn = lambda a, n_in=node.n_in: int_weights.quantize(  # noqa: E731
        a, n_in, mode, qcfg.quant_group_size, jnp.dtype(qcfg.param_dtype))
    if stacked:
      fn = jax.vmap(fn)
    q, scale = jax.jit(fn, out_shardings=out_sh if shardings else None)(w)
    values[f"{name}.weight"], values[f"{name}.weight_scale"] = q, scale
  for name, v in source.items():  # embeddings, norms, value heads: unchanged
    values[name] = jax.device_put(v, shardings.get(name)) if shardings else v
  missing = set(targets) - set(values)
  assert not missing and not codes, (sorted(missing), sorted(codes))
  for name, var in targets.items():
    var.set_value(values[name])
  return QuantizedModel(qcfg, nnx.merge(graphdef, abs_state), method)


def param_bytes(model: nnx.Module) -> int:
  """Bytes the model's state takes at its storage width (int4 counts half a byte)."""
  total = 0
  for v in param_paths(nnx.state(model)).values():
    a = v[...]
    total += a.size * int_weights.storage_bits(a.dtype) // 8
  return total
