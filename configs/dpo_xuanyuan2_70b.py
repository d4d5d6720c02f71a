"""XuanYuan2-70B DPO: the SFT model as policy and as the frozen bfloat16 reference, on preference
pairs of up to 4096 tokens, 64 pairs per step.

  python -m xy_jax.train --config configs/dpo_xuanyuan2_70b.py --workdir /mnt/gcs/runs/dpo70b \
      --config.init_from_checkpoint=/mnt/gcs/runs/sft_xy2_70b/checkpoints

Planned on v5p-256 (docs/performance.md): python tools/plan.py --config=configs/dpo_xuanyuan2_70b.py
--topology v5p:4x4x8. TRL's defaults otherwise (beta 0.1, sigmoid loss).
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "dpo"
  c.model = model_config("xuanyuan2_70b", dtype="bfloat16", remat_policy="full")
  c.mesh.rules = {"vocab": (), "act_vocab": ()}  # 39438 does not divide the tensor axis
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 8
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {"pairs": {"paths": ("data/preference/*.jsonl",), "weight": 1.0, "format": "preference"}}
  c.data.buckets = (4096,)
  c.data.tokens_per_step = 4096 * 128  # 64 pairs
  c.data.eval_fraction = 0.02
  c.dpo.beta = 0.1
  c.dpo.loss = "sigmoid"
  c.dpo.reference_dtype = "bfloat16"
  c.optim.lr = 5e-7
  c.optim.warmup_steps = 50
  c.optim.weight_decay = 0.0
  c.optim.schedule = "linear"
  c.optim.grad_accum = 4
  c.train.steps = 1000
  c.train.checkpoint_every = 100
  c.train.eval_every = 100
  c.train.peak_flops_per_device = 459e12
  return c
