"""XuanYuan2-70B chat SFT: answer-only loss mixed with pretraining text, rows of 4096 tokens, 128
rows per step. Full fine-tuning, or with `:lora` rank-16 adapters on every projection, the base
frozen in bfloat16 (no gradient, no optimizer state) on a slice an eighth the size
(`--config.lora.base_quant=int8` holds the base as int8: QLoRA).

  python -m xy_jax.train --config configs/sft_xuanyuan2_70b.py --workdir /mnt/gcs/runs/sft_xy2_70b \
      --config.init_from_checkpoint=/mnt/gcs/runs/continue_xy2_70b/checkpoints
  python -m xy_jax.train --config configs/sft_xuanyuan2_70b.py:lora --workdir /mnt/gcs/runs/sft_lora70b \
      --config.init_from_checkpoint=/mnt/gcs/runs/continue_xy2_70b/checkpoints
  python tools/export_hf.py --checkpoint /mnt/gcs/runs/sft_lora70b/checkpoints --out hf_lora --part adapter

Planned (docs/performance.md): python tools/plan.py --config=configs/sft_xuanyuan2_70b.py
--topology v5p:4x4x8, and --config=configs/sft_xuanyuan2_70b.py:lora --topology v5p:2x2x4.
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  if arg not in (None, "", "lora"):
    raise ValueError(f"configs/sft_xuanyuan2_70b.py:{arg}: the variants are '' (full) and 'lora'")
  c = base_config()
  c.stage = "sft"
  c.model = model_config("xuanyuan2_70b", dtype="bfloat16", remat_policy="full")
  c.mesh.rules = {"vocab": (), "act_vocab": ()}  # 39438 does not divide the tensor axis
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 8
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {
      "sft": {"paths": ("data/sft/*.jsonl",), "weight": 0.8, "format": "sft"},
      "lm": {"paths": ("data/finance/*.jsonl", "data/general/*.jsonl"), "weight": 0.2},
  }
  c.data.buckets = (4096,)
  c.data.tokens_per_step = 4096 * 128
  c.optim.lr = 1e-5
  c.optim.warmup_steps = 100
  c.optim.weight_decay = 0.0
  c.optim.grad_accum = 4
  c.train.steps = 3000
  c.train.eval_every = 200
  c.train.checkpoint_every = 200
  c.train.peak_flops_per_device = 459e12
  if arg == "lora":
    c.lora.rank = 16
    c.lora.alpha = 32.0
    c.lora.targets = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"
    c.optim.frozen_dtype = "bfloat16"
    c.optim.lr = 2e-4  # LoRA's usual rate: the adapters start at zero
    c.mesh.tensor = 4
    c.optim.grad_accum = 16
  return c
