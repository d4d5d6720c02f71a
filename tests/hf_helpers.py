"""Tiny random `transformers` Llama models written to disk, the reference the tests compare against."""

from __future__ import annotations

import os
import shutil

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from xy_jax.data.tokenizer import DEFAULT_ASSET

TINY_HF = dict(vocab_size=2048, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=2, rope_theta=50000.0,
               max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
               bos_token_id=1, eos_token_id=2, pad_token_id=3)


def make_hf_model(path: str, seed: int = 0, dtype=torch.float32, max_shard_size="200KB",
                  **overrides) -> LlamaForCausalLM:
  """Random tiny LlamaForCausalLM saved (sharded safetensors) with the shipped tokenizer."""
  torch.manual_seed(seed)
  cfg = LlamaConfig(**{**TINY_HF, **overrides})
  model = LlamaForCausalLM(cfg).eval()
  # Random norms too, so a transposed or swapped norm weight cannot hide.
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name:
        p.copy_(1.0 + 0.1 * torch.randn_like(p))
  model = model.to(dtype)
  model.save_pretrained(path, max_shard_size=max_shard_size)
  shutil.copyfile(DEFAULT_ASSET, os.path.join(path, "tokenizer.model"))
  return model


def hf_logits(model: LlamaForCausalLM, tokens: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return model(torch.as_tensor(tokens, dtype=torch.long)).logits.float().numpy()
