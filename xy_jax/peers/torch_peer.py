"""The peer side of our speed comparisons: Hugging Face transformers + PyTorch on the same
exported model (sdpa attention; CUDA when present). Used by tools/bench.py and gpu_check."""

import time

import numpy as np


def _device():
  import torch
  return "cuda" if torch.cuda.is_available() else "cpu"


def _sync():
  import torch
  if torch.cuda.is_available():
    torch.cuda.synchronize()


def train_tokens_per_s(hf_dir: str, tokens: np.ndarray, steps: int, mixed: bool) -> float:
  """AdamW steps with clipping; `mixed`: bfloat16 autocast over float32 parameters."""
  import torch
  from transformers import AutoModelForCausalLM
  device = _device()
  model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="sdpa").to(device)
  model.train()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.0)
  x = torch.as_tensor(tokens, dtype=torch.long, device=device)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
      loss = model(input_ids=x, labels=x).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

  step()
  _sync()
  start = time.perf_counter()
  for _ in range(steps):
    step()
  _sync()
  return x.numel() * steps / (time.perf_counter() - start)


def load_causal_lm(hf_dir: str, bf16: bool):
  """The exported model in eval mode on the device, for several `generate_tokens_per_s` calls."""
  import torch
  from transformers import AutoModelForCausalLM
  dtype = torch.bfloat16 if bf16 else torch.float32
  return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=dtype, attn_implementation="sdpa").to(_device()).eval()


def generate_tokens_per_s(model_or_dir, prompts, new_tokens: int, bf16: bool = False) -> float:
  """transformers' greedy `generate` of exactly `new_tokens` per prompt (timed after a warm-up).
  `model_or_dir`: a model from `load_causal_lm` or an exported directory (`bf16` then applies)."""
  import torch
  model = load_causal_lm(model_or_dir, bf16) if isinstance(model_or_dir, str) else model_or_dir
  p = torch.as_tensor(np.asarray(prompts), dtype=torch.long, device=model.device)
  kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                eos_token_id=None)
  with torch.no_grad():
    model.generate(p, **kwargs)
    _sync()
    start = time.perf_counter()
    model.generate(p, **kwargs)
    _sync()
  return p.shape[0] * new_tokens / (time.perf_counter() - start)
