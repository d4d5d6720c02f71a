"""Quantised models as Hugging Face release checkpoints that transformers loads as they are.

  gptq: our int4 or int8 as GPTQ v1 (`quant_method: gptq`, `bits` 4 or 8, symmetric, desc_act
        off). With p = 32 / bits codes per int32, per projection: `qweight` int32 [in/p, out] (input
        row p*i+j in field j, low bits first), `qzeros` int32 [groups, out/p] holding zero - 1 in
        every field (4-bit: zero 8, 0x77777777; 8-bit: zero 128, 0x7F7F7F7F), `scales` fp16
        [groups, out] and `g_idx` int32 = row // group_size. The loader dequantises
        scale * (code - zero), so our codes q (int4 in [-8, 7], int8 in [-127, 127]) are stored as
        q + zero with our scales. int8 is per output channel: one group, `group_size` -1 and g_idx
        all zeros.
  bnb:  our int8 as bitsandbytes LLM.int8 (int8's default): `weight` int8 [out, in] and `SCB` fp32
        [out] (the row absmax: our per-output-channel scale x 127).

Embeddings, norms and lm_head stay 16-bit (float16), as in published GPTQ releases (our quantiser
leaves lm_head float too).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from flax import nnx

from xy_jax.convert import hf_config, hf_weights
from xy_jax.convert.hf import Log, host_tensors, write_hf_dir
from xy_jax.data.tokenizer import ChatTemplate
from xy_jax.errors import ConversionError
from xy_jax.models import int_weights
from xy_jax.models.factory import param_paths
from xy_jax.models.model_config import ModelConfig

# The weight modes each --format takes, and the format a mode gets when none is asked for.
FORMATS = {"gptq": ("int4", "int8"), "bnb": ("int8",)}
DEFAULT_FORMAT = {"int4": "gptq", "int8": "bnb"}
DTYPE = "float16"


def gptq_v1_zeros(bits: int) -> np.int32:
  """One qzeros word: GPTQ v1 stores zero - 1 with zero = 2^(bits-1) (symmetric) in every field."""
  return np.uint32(sum((2 ** (bits - 1) - 1) << (bits * j) for j in range(32 // bits))).view(np.int32)


def format_for(mode: str) -> str:
  return DEFAULT_FORMAT[mode]


def check_format(fmt: str, mode: str) -> None:
  if mode not in FORMATS.get(fmt, ()):
    raise ConversionError(f"--format={fmt} needs an {' or '.join(FORMATS.get(fmt, ('?',)))} model, "
                          f"this one is {mode}: use --format={format_for(mode)}")


def gptq_pack(q: np.ndarray, scale: np.ndarray, bits: int = 4) -> dict[str, np.ndarray]:
  """int4 / int8 codes q [in, out] and scales [groups, out] -> GPTQ v1 tensors of `bits`."""
  k, m = q.shape
  p = 32 // bits
  if k % p or m % p:
    raise ConversionError(f"{bits}-bit GPTQ packs {p} values per int32: a projection of {k} inputs "
                          f"and {m} outputs does not divide by {p}")
  g = scale.shape[0]
  u = (q.astype(np.int32) + 2 ** (bits - 1)).astype(np.uint32).reshape(k // p, p, m)
  packed = np.zeros((k // p, m), np.uint32)
  for j in range(p):
    packed |= u[:, j, :] << np.uint32(bits * j)
  return {"qweight": packed.view(np.int32),
          "qzeros": np.full((g, m // p), gptq_v1_zeros(bits), np.int32),
          "scales": np.ascontiguousarray(scale.astype(np.float16)),
          "g_idx": (np.arange(k) // (k // g)).astype(np.int32)}


def bnb_pack(q: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
  """int8 codes q [in, out] and per-output-channel scales [1, out] -> LLM.int8 tensors."""
  if scale.shape[0] != 1:
    raise ConversionError(f"bitsandbytes int8 has one scale per output channel; this weight has "
                          f"{scale.shape[0]} groups")
  return {"weight": np.ascontiguousarray(q.astype(np.int8).T),
          "SCB": np.ascontiguousarray(scale[0].astype(np.float32) * 127)}


def quantization_config(fmt: str, cfg: ModelConfig) -> dict:
  if fmt == "gptq":
    # int8 is per output channel: GPTQ's -1, one group over all rows.
    group = (cfg.quant_group_size or -1) if cfg.quant == "int4" else -1
    return {"quant_method": "gptq", "bits": int_weights.BITS[cfg.quant], "group_size": group,
            "desc_act": False, "sym": True, "checkpoint_format": "gptq", "lm_head": False}
  return {"quant_method": "bitsandbytes", "load_in_8bit": True, "load_in_4bit": False,
          "llm_int8_threshold": 6.0, "llm_int8_skip_modules": ["lm_head"]}


def export_quantized(model: nnx.Module, cfg: ModelConfig, out: str, fmt: str | None = None,
                     kind: str = "causal_lm", tokenizer_file: str | None = None,
                     template: ChatTemplate = ChatTemplate(), max_shard_bytes: int = 2 << 30,
                     overwrite: bool = False, log: Log = print) -> None:
  """A quantised model -> HF directory in `fmt`: gptq (int4 or int8) or bnb (int8); by default gptq
  for int4, bnb for int8."""
  if cfg.quant == "none":
    raise ConversionError("this model is not quantised: export it with export_hf, or quantise it "
                          "first (tools/quantize.py)")
  if kind != "causal_lm":
    raise ConversionError(f"a {kind} model: quantised HF export writes LlamaForCausalLM only")
  fmt = fmt or format_for(cfg.quant)
  check_format(fmt, cfg.quant)
  pack = functools.partial(gptq_pack, bits=int_weights.BITS[cfg.quant]) if fmt == "gptq" else bnb_pack
  flat = {k: v[...] for k, v in param_paths(nnx.state(model)).items()}
  scales = {n[:-len("_scale")]: flat.pop(n) for n in list(flat) if n.endswith(".weight_scale")}
  rules = hf_weights.tensor_rules({k: v.shape for k, v in flat.items()})
  f16 = np.dtype(DTYPE)

  def tensors():
    for rule in rules:
      if rule.ours not in scales:
        for name, host in host_tensors(rule, flat[rule.ours]):
          yield name, rule.to_hf(host).astype(f16)
        continue
      layers = zip(host_tensors(rule, flat[rule.ours]), host_tensors(rule, scales[rule.ours]))
      for (name, q), (_, s) in layers:
        k = math.prod(q.shape[:rule.in_dims])
        prefix = name[:-len(".weight")]
        for suffix, t in pack(q.reshape(k, -1), s.reshape(s.shape[0], -1)).items():
          yield f"{prefix}.{suffix}", t

  config = hf_config.model_config_to_hf(cfg, kind, DTYPE)
  config["quantization_config"] = quantization_config(fmt, cfg)
  write_hf_dir(out, tensors(), config, cfg, tokenizer_file, template, max_shard_bytes, overwrite, log)
