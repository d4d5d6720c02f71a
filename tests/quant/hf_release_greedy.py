"""Greedy continuations of a GPTQ HF directory through transformers + gptqmodel's torch kernel on
CPU, the reference for vLLM's (run in tests/quant/release_env.py's venv).

  python hf_release_greedy.py DIR PROMPTS.json MAX_NEW OUT.json

PROMPTS is a list of token-id lists; each is decoded on its own (no padding), for exactly MAX_NEW
tokens, end-of-sequence not special (as vLLM's ignore_eos). Writes the new tokens as JSON.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, GPTQConfig


def main(model_dir, prompts_path, max_new, out_path):
  model = AutoModelForCausalLM.from_pretrained(
      model_dir, device_map="cpu", dtype=torch.float16,
      quantization_config=GPTQConfig(bits=4, backend="torch")).eval()
  out = []
  with torch.no_grad():
    for prompt in json.load(open(prompts_path)):
      ids = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=int(max_new),
                           eos_token_id=None, pad_token_id=model.config.pad_token_id)
      out.append(ids[0, len(prompt):].tolist())
  json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
  main(*sys.argv[1:])
