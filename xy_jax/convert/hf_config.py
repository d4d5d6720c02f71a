"""`config.json` <-> ModelConfig, and the other small JSON files of an HF model directory."""

from __future__ import annotations

import json
import os
from typing import Any

from xy_jax.data.tokenizer import ChatTemplate
from xy_jax.errors import ConfigError, ConversionError
from xy_jax.models import rope
from xy_jax.models.model_config import ModelConfig

# The model card's sampling defaults.
GENERATION_DEFAULTS = {"do_sample": True, "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 256}

ARCHITECTURES = {"causal_lm": "LlamaForCausalLM", "reward": "LlamaForSequenceClassification"}
# Mistral's classes are LLaMA's decoder (a sliding window, when set, is refused by the config check).
MODEL_TYPES = ("llama", "mistral")

# config.json fields that switch on what the decoder does not implement: field -> test that the
# value leaves the LLaMA math unchanged. Anything else LLaMA-specific is read by name below.
_NEUTRAL = {
    "attention_bias": lambda v, raw: not v,
    "mlp_bias": lambda v, raw: not v,
    "tie_word_embeddings": lambda v, raw: not v,
    "hidden_act": lambda v, raw: v in (None, "silu"),
    "use_sliding_window": lambda v, raw: not v,
    "sliding_window": lambda v, raw: v is None or v >= raw.get("max_position_embeddings", 2048),
    "layer_types": lambda v, raw: not v or all(t == "full_attention" for t in v),
    "no_rope_layers": lambda v, raw: not v or all(v),
    "attention_chunk_size": lambda v, raw: v is None,
    "attn_logit_softcapping": lambda v, raw: v is None,
    "final_logit_softcapping": lambda v, raw: v is None,
    "qk_norm": lambda v, raw: not v,
    "use_qk_norm": lambda v, raw: not v,
}


def model_kind(path: str) -> str:
  """causal_lm or reward, from config.json's `architectures`."""
  archs = read_json(path).get("architectures") or ["LlamaForCausalLM"]
  for kind, arch in ARCHITECTURES.items():
    if arch in archs or arch.replace("Llama", "Mistral") in archs:
      return kind
  raise ConversionError(f"{path}: architectures={archs}; expected LlamaForCausalLM or "
                        f"LlamaForSequenceClassification")


def read_json(path: str) -> dict[str, Any]:
  if not os.path.isfile(path):
    raise ConversionError(f"{path}: not found")
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise ConversionError(f"{path}:{e.lineno}:{e.colno}: malformed JSON ({e.msg})") from None
  except (OSError, UnicodeDecodeError) as e:
    raise ConversionError(f"{path}: unreadable ({e})") from None
  if not isinstance(data, dict):
    raise ConversionError(f"{path}: expected a JSON object, found {type(data).__name__}")
  return data


def _rope_from_hf(raw: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
  """Both layouts: transformers 5's `rope_parameters` and the older `rope_theta` + `rope_scaling`."""
  params = raw.get("rope_parameters")
  if isinstance(params, dict):
    theta = params.get("rope_theta", raw.get("rope_theta", 10000.0))
    scaling = {k: v for k, v in params.items() if k != "rope_theta"}
  else:
    theta = raw.get("rope_theta", 10000.0)
    scaling = dict(raw.get("rope_scaling") or {})
  if "type" in scaling and "rope_type" not in scaling:
    scaling["rope_type"] = scaling.pop("type")
  scaling.pop("type", None)
  if scaling.get("rope_type", "default") == "default":
    scaling = {}
  if scaling.get("rope_type") == "llama3":
    # transformers reads a missing one as max_position_embeddings, rope.py as 8192.
    scaling.setdefault("original_max_position_embeddings", raw.get("max_position_embeddings", 2048))
  return float(theta), (scaling or None)


def _context_length(path: str, raw: dict[str, Any], scaling: dict[str, Any] | None) -> int:
  """Ours (the Generator's limit) from HF's max_position_embeddings, which under linear or dynamic
  scaling is the length before it: vLLM allows int(max_position_embeddings * factor) tokens and
  transformers' dynamic NTK rescales past it. rope.original_length maps ours back."""
  hf_len = raw.get("max_position_embeddings", 2048)
  factor = (scaling or {}).get("factor")
  numbers = isinstance(hf_len, int) and isinstance(factor, (int, float)) and not isinstance(factor, bool)
  if (scaling or {}).get("rope_type") not in rope.FACTOR_SCALED or not numbers:
    return hf_len  # ModelConfig names a bad value
  length = int(hf_len * factor)
  if factor <= 0 or rope.unscaled_length(length, factor) != hf_len:
    raise ConversionError(f"{path}: max_position_embeddings={hf_len} with rope_scaling.factor={factor} "
                          f"gives {hf_len * factor} tokens after scaling, which does not map back; "
                          "this model cannot be converted exactly")
  return length


def _hf_max_positions(cfg: ModelConfig) -> int:
  hf_len = rope.original_length(cfg)
  if hf_len != cfg.max_position_embeddings:
    factor = float(cfg.rope_scaling["factor"])
    if int(hf_len * factor) != cfg.max_position_embeddings:
      raise ConversionError(
          f"model.max_position_embeddings={cfg.max_position_embeddings}: no whole length times "
          f"rope_scaling.factor={factor} gives it (HF config.json stores the length before scaling); "
          f"use a multiple of the factor")
  return hf_len


def _rope_scaling_to_hf(cfg: ModelConfig) -> dict[str, Any] | None:
  scaling = dict(cfg.rope_scaling) if cfg.rope_scaling else None
  if scaling and scaling.get("rope_type", scaling.get("type")) == "llama3":
    scaling.setdefault("original_max_position_embeddings", rope.LLAMA3_ORIGINAL_DEFAULT)
  return scaling


def model_config_from_hf(path: str, **overrides) -> ModelConfig:
  raw = read_json(path)
  model_type = raw.get("model_type", "llama")
  if model_type not in MODEL_TYPES:
    raise ConversionError(f"{path}: model_type={model_type!r}; only LLaMA-style decoders convert "
                          f"({', '.join(MODEL_TYPES)})")
  required = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads")
  for key in required:
    if key not in raw:
      raise ConversionError(f"{path}: missing field {key!r}")
  for key, neutral in _NEUTRAL.items():
    if key in raw and not neutral(raw[key], raw):
      raise ConversionError(f"{path}: {key}={json.dumps(raw[key])} is not implemented by the xy_jax "
                            f"LLaMA decoder; this model cannot be converted exactly")
  theta, scaling = _rope_from_hf(raw)

  def token_id(key, default):
    v = raw.get(key, default)
    if isinstance(v, list):
      v = v[0]
    return default if v is None else int(v)

  fields = dict(
      vocab_size=raw["vocab_size"], hidden_size=raw["hidden_size"],
      intermediate_size=raw["intermediate_size"], num_hidden_layers=raw["num_hidden_layers"],
      num_attention_heads=raw["num_attention_heads"],
      num_key_value_heads=raw.get("num_key_value_heads") or raw["num_attention_heads"],
      head_dim=raw.get("head_dim"), max_position_embeddings=_context_length(path, raw, scaling),
      rope_theta=theta, rope_scaling=scaling, rms_norm_eps=raw.get("rms_norm_eps", 1e-6),
      bos_token_id=token_id("bos_token_id", 1), eos_token_id=token_id("eos_token_id", 2),
      pad_token_id=token_id("pad_token_id", 0))
  if fields["head_dim"] == fields["hidden_size"] // fields["num_attention_heads"]:
    fields["head_dim"] = None
  fields.update(overrides)
  try:
    return ModelConfig.from_dict(fields, field=path)
  except ConfigError as e:
    raise ConversionError(str(e)) from None


def source_dtype(path: str) -> str:
  raw = read_json(path)
  d = raw.get("torch_dtype") or raw.get("dtype") or "float32"
  return {"bfloat16": "bfloat16", "float16": "float16"}.get(str(d), "float32")


def model_config_to_hf(cfg: ModelConfig, kind: str, dtype: str) -> dict[str, Any]:
  """A config.json that transformers 4.x and 5.x both read (legacy rope keys are still honoured)."""
  out = {
      "architectures": [ARCHITECTURES[kind]],
      "model_type": "llama",
      "vocab_size": cfg.vocab_size,
      "hidden_size": cfg.hidden_size,
      "intermediate_size": cfg.intermediate_size,
      "num_hidden_layers": cfg.num_hidden_layers,
      "num_attention_heads": cfg.num_attention_heads,
      "num_key_value_heads": cfg.num_key_value_heads,
      "head_dim": cfg.resolved_head_dim,
      "hidden_act": "silu",
      "max_position_embeddings": _hf_max_positions(cfg),
      "initializer_range": 0.02,
      "rms_norm_eps": cfg.rms_norm_eps,
      "rope_theta": cfg.rope_theta,
      "rope_scaling": _rope_scaling_to_hf(cfg),
      "attention_bias": False,
      "mlp_bias": False,
      "tie_word_embeddings": False,
      "bos_token_id": cfg.bos_token_id,
      "eos_token_id": cfg.eos_token_id,
      "pad_token_id": cfg.pad_token_id,
      "use_cache": True,
      "torch_dtype": dtype,
  }
  if kind == "reward":
    out.update(num_labels=1, id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})
  return out


def generation_config(cfg: ModelConfig) -> dict[str, Any]:
  return {"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
          "pad_token_id": cfg.pad_token_id, **GENERATION_DEFAULTS}


def tokenizer_config(cfg: ModelConfig, template: ChatTemplate, pieces: dict[int, str],
                     add_prefix_space: bool) -> dict[str, Any]:
  """`tokenizer_config.json` for transformers' LlamaTokenizer over our `tokenizer.model`."""
  return {
      "tokenizer_class": "LlamaTokenizer",
      "bos_token": pieces[cfg.bos_token_id],
      "eos_token": pieces[cfg.eos_token_id],
      "pad_token": pieces[cfg.pad_token_id],
      "unk_token": pieces.get(0, "<unk>"),
      "add_bos_token": True,
      "add_eos_token": False,
      "legacy": False,
      "add_prefix_space": add_prefix_space,
      "clean_up_tokenization_spaces": False,
      "model_max_length": cfg.max_position_embeddings,
      "chat_template": template.jinja(),
  }


def write_json(path: str, data: dict[str, Any]) -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f, ensure_ascii=False, indent=2)
    f.write("\n")
