"""Checkpoints written from other weights: a Hugging Face import, a quantised copy."""

from __future__ import annotations

import os

from flax import nnx

from xy_jax.convert.hf import Log, load_hf
from xy_jax.convert.hf_config import model_kind, source_dtype
from xy_jax.io_utils import atomic_output_dir, check_output
from xy_jax.models.model_config import ModelConfig
from xy_jax.quant.quantize_model import QuantizedModel, param_bytes
from xy_jax.sharding import LogicalSharding
from xy_jax.weights import layout


def import_hf(hf_dir: str, out: str, sharding: LogicalSharding, param_dtype: str = "float32",
              allow_torch_bin: bool = False, overwrite: bool = False, log: Log = print) -> ModelConfig:
  """HF directory -> orbax checkpoint (step 0) with the tokenizer alongside.

  `LlamaForCausalLM` imports as a causal LM, `LlamaForSequenceClassification` as a reward model.
  """
  check_output(out, overwrite)  # before reading a single tensor
  tok_file = os.path.join(hf_dir, layout.TOKENIZER_FILE)
  kind = model_kind(os.path.join(hf_dir, "config.json"))
  cfg, model = load_hf(hf_dir, sharding, kind, param_dtype, allow_torch_bin, log)
  meta = {"model": cfg.to_dict(), "kind": kind, "stage": "import",
          "source": os.path.abspath(hf_dir),
          "source_dtype": source_dtype(os.path.join(hf_dir, "config.json"))}
  if not os.path.isfile(tok_file):
    log(f"{tok_file}: not found; the checkpoint will have no tokenizer")
    tok_file = None
  with atomic_output_dir(out, overwrite) as tmp:
    layout.save_model(tmp, nnx.to_pure_dict(nnx.state(model)), meta, 0, tok_file)
  log(f"wrote {out}")
  return cfg


def save_quantized(path: str, q: QuantizedModel, kind: str, source: str,
                   tokenizer_file: str | None) -> None:
  """The usual checkpoint layout (step 0, meta with the quantised model config, tokenizer)."""
  meta = {"model": q.cfg.to_dict(), "kind": kind, "stage": "quantize", "source": source,
          "quant": {"mode": q.cfg.quant, "group_size": q.cfg.quant_group_size,
                    "method": q.method, "lm_head": "float", "bytes": param_bytes(q.model)}}
  layout.save_model(path, nnx.to_pure_dict(nnx.state(q.model)), meta, 0, tokenizer_file)
