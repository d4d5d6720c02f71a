"""XuanYuan-70B / XuanYuan2-70B continued pretraining from LLaMA-2-70B, the XuanYuan way.

  # 0. LLaMA-2's 32,000 pieces + Chinese pieces learnt from the corpus = 39,438:
  python tools/extend_vocab.py --hf /models/Llama-2-70b-hf --corpus data/zh_general,data/zh_finance \
      --vocab_size 39438 --out runs/llama2_70b_zh
  # 1. embeddings and LM head only, at 4k (the rest frozen, held in bfloat16):
  python -m xy_jax.train --config configs/continue_llama2_70b.py:stage1 --workdir /mnt/gcs/runs/cpt1
  # 2. everything, 2k/4k/8k/16k buckets, the finance share raised over the run:
  python -m xy_jax.train --config configs/continue_llama2_70b.py:stage2 --workdir /mnt/gcs/runs/cpt2
  python tools/plan.py --config configs/continue_llama2_70b.py:stage1 --topology v5p:4x4x8

Mixture (XuanYuan-13B/70B reports): Chinese:English 3:1 and general:finance 9:1 at the start, the
finance share raised at 25k and 50k steps. Sources are illustrative paths; point them at yours.
"""

from xy_jax.config import base_config, model_config

ZH_EN = {"zh": 0.75, "en": 0.25}


def mixture(finance: float) -> dict[str, float]:
  """Source weights for a finance share, keeping Chinese:English at 3:1 on both sides."""
  return {f"{lang}_{kind}": share * (finance if kind == "finance" else 1 - finance)
          for lang, share in ZH_EN.items() for kind in ("general", "finance")}


def get_config(arg="stage1"):
  if arg not in ("stage1", "stage2"):
    raise ValueError(f"--config=...:{arg}: use stage1 or stage2")
  c = base_config()
  c.mesh.rules = {"vocab": (), "act_vocab": ()}  # 39438 does not divide the tensor axis
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 4  # v5p-256: fsdp 32 x tensor 4
  c.data.prepared_dir = "runs/data/continue_llama2_70b"
  c.data.sources = {name: {"paths": (f"data/{name}/",), "weight": w} for name, w in mixture(0.1).items()}
  c.train.peak_flops_per_device = 459e12  # TPU v5p bf16
  c.train.eval_every, c.train.checkpoint_every = 1000, 500
  if arg == "stage1":
    # LLaMA-2-70B's shape with the extended vocabulary; only the new and old vocabulary rows train.
    c.model = model_config("xuanyuan_70b", dtype="bfloat16", remat_policy="full")
    c.init_from_checkpoint = "runs/llama2_70b_zh"
    c.optim.trainable = r"embed_tokens|lm_head"
    c.optim.frozen_dtype = "bfloat16"
    c.data.buckets = (4096,)
    c.data.tokens_per_step = 4096 * 256
    c.optim.grad_accum = 2
    c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 2e-4, 100, 0.0
    c.train.steps = 4000
  else:
    # Every parameter, from stage 1, at up to 16k (RoPE positions scaled linearly by 4).
    c.model = model_config("xuanyuan2_70b", dtype="bfloat16", remat_policy="full")
    c.model_from_config = ("max_position_embeddings", "rope_scaling")
    c.init_from_checkpoint = "/mnt/gcs/runs/cpt1/checkpoints"
    c.data.buckets = (2048, 4096, 8192, 16384)
    c.data.eval_length = 2048
    c.data.tokens_per_step = 16384 * 256
    c.data.mixture_schedule = ((25000, mixture(0.2)), (50000, mixture(0.3)))
    c.optim.grad_accum = 8
    c.optim.lr, c.optim.warmup_steps, c.optim.min_lr_ratio = 3e-5, 200, 0.1
    c.train.steps = 75000
  return c
