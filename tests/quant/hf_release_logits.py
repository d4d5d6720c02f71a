"""Logits of a quantised HF directory through transformers' own loaders (run in release_env's venv).

  python hf_release_logits.py DIR TOKENS.npy OUT.npy [DIR OUT.npy ...]

GPTQ (4- or 8-bit) goes through gptqmodel's torch kernel, bitsandbytes through its CPU backend.
Writes float32 logits [batch, time, vocab] and prints the quantised module classes it saw (one line
per DIR). Further DIR OUT.npy pairs are loaded in the same process (gptqmodel takes seconds to
import).
"""

import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, GPTQConfig


def logits(model_dir, tokens_path, out_path):
  config = __import__("json").load(open(f"{model_dir}/config.json"))
  method = config["quantization_config"]["quant_method"]
  kwargs = {"device_map": "cpu"}
  if method == "gptq":
    bits = config["quantization_config"]["bits"]
    kwargs["quantization_config"] = GPTQConfig(bits=bits, backend="torch")
    kwargs["dtype"] = torch.float16
  model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).eval()
  kinds = sorted({type(m).__name__ for n, m in model.named_modules() if n.endswith("up_proj")})
  head = type(model.lm_head).__name__
  with torch.no_grad():
    logits = model(torch.from_numpy(np.load(tokens_path)).long()).logits
  np.save(out_path, logits.float().numpy())
  print(f"up_proj: {','.join(kinds)}; lm_head: {head}; dtype: {model.dtype}")


def main(model_dir, tokens_path, out_path, *more):
  logits(model_dir, tokens_path, out_path)
  for other_dir, other_out in zip(more[::2], more[1::2]):
    logits(other_dir, tokens_path, other_out)


if __name__ == "__main__":
  main(*sys.argv[1:])
