"""Logits of a quantised HF directory through transformers' own loaders (run in release_env's venv).

  python hf_release_logits.py TOKENS.npy DIR OUT.npy DTYPE [DIR OUT.npy DTYPE ...]

GPTQ (4- or 8-bit) goes through gptqmodel's torch kernel, bitsandbytes through its CPU backend.
DTYPE float16 loads the release as it is meant to run: float16 throughout, gptqmodel dequantising
scale * (code - zero) in float16 (its scales' dtype) and LLM.int8 quantising activations from
float16. DTYPE float32 loads in float32 and then casts the buffers still in float16 to float32 (for
GPTQ: the scales, which gptqmodel keeps in float16), so gptqmodel's dequantised weights are exactly
scale * (code - zero) and its matmuls run in float32. A bitsandbytes model comes out float16
either way (LLM.int8 casts its inputs to float16 regardless). Writes float32 logits [batch, time,
vocab] and prints the quantised module classes and the dtypes it ran with (one line per DIR). All
DIRs load in one process (gptqmodel takes seconds to import).
"""

import json
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, GPTQConfig


def logits(tokens_path, model_dir, out_path, dtype):
  config = json.load(open(f"{model_dir}/config.json"))
  method = config["quantization_config"]["quant_method"]
  kwargs = {"device_map": "cpu", "dtype": getattr(torch, dtype)}
  if method == "gptq":
    bits = config["quantization_config"]["bits"]
    kwargs["quantization_config"] = GPTQConfig(bits=bits, backend="torch")
  model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).eval()
  if dtype == "float32":
    # transformers refuses model.float() on a quantised model: cast the buffers left in float16.
    for module in model.modules():
      for name, buf in module.named_buffers(recurse=False):
        if buf.dtype == torch.float16:
          setattr(module, name, buf.float())
  kinds = sorted({type(m).__name__ for n, m in model.named_modules() if n.endswith("up_proj")})
  up = model.model.layers[0].mlp.up_proj
  scales = getattr(up, "scales", None)
  with torch.no_grad():
    logits = model(torch.from_numpy(np.load(tokens_path)).long()).logits
  np.save(out_path, logits.float().numpy())
  print(f"up_proj: {','.join(kinds)}; lm_head: {type(model.lm_head).__name__}; dtype: {model.dtype}; "
        f"scales: {None if scales is None else scales.dtype}; logits: {logits.dtype}")


def main(tokens_path, *runs):
  for model_dir, out_path, dtype in zip(runs[::3], runs[1::3], runs[2::3]):
    logits(tokens_path, model_dir, out_path, dtype)


if __name__ == "__main__":
  main(*sys.argv[1:])
