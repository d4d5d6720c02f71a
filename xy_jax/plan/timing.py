"""Timing our train step and generation, shared by tools/bench.py and tools/gpu_check.py.

Both are timed after a warm-up call (compilation excluded) and synchronised on the results.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax
from flax import nnx

from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import abstract_model, init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding
from xy_jax.train.losses import lm_loss
from xy_jax.train.state import TrainState
from xy_jax.train.step import make_train_step

# Dense bf16 peak FLOP/s and HBM bandwidth of the accelerators gpu_check knows (vendor figures).
DEVICES = {"H100": (989e12, 3.35e12), "H200": (989e12, 4.8e12), "A100": (312e12, 2.0e12)}


def device_peak(device_kind: str) -> tuple[float, float] | None:
  """(bf16 FLOP/s, HBM bytes/s) of a device kind string such as 'NVIDIA H100 80GB HBM3'."""
  return next((v for k, v in DEVICES.items() if k in device_kind), None)


def lm_batch(tokens: np.ndarray) -> dict[str, np.ndarray]:
  b, t = tokens.shape
  return {"tokens": tokens, "positions": np.broadcast_to(np.arange(t, dtype=np.int32), (b, t)),
          "segment_ids": np.ones((b, t), np.int32), "loss_mask": np.ones((b, t), np.int32)}


def _train_step(cfg: ModelConfig, sharding: LogicalSharding):
  graphdef, abs_state = abstract_model(CausalLM, cfg, sharding)
  tx = optax.adamw(1e-4, b1=0.9, b2=0.95, weight_decay=0.0)
  step = jax.jit(make_train_step(graphdef, lm_loss(0.0), tx, optax.constant_schedule(1e-4), 1, 0.0, sharding),
                 donate_argnums=0)
  return step, tx, nnx.to_pure_dict(abs_state)


def compile_train_step(cfg: ModelConfig, shape: tuple[int, int], sharding: LogicalSharding = LogicalSharding()):
  """Our LM train step (AdamW) compiled for rows of `shape` [rows, length], nothing allocated.
  Returns (compiled step, optimizer)."""
  step, tx, abs_params = _train_step(cfg, sharding)
  abs_state = jax.eval_shape(lambda p: TrainState.create(p, tx), abs_params)
  batch = {k: jax.ShapeDtypeStruct(shape, np.int32) for k in ("tokens", "positions", "segment_ids", "loss_mask")}
  return step.lower(abs_state, batch).compile(), tx


def peak_bytes(compiled) -> int | None:
  """Device memory a compiled program needs at its peak (arguments, outputs not aliased onto
  them, temporaries), from the compiler's own analysis; None where the backend gives none."""
  m = compiled.memory_analysis()
  if m is None:
    return None
  return m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes


def time_train_step(compiled, tx, params, tokens: np.ndarray, steps: int) -> float:
  """tokens/s of a step from `compile_train_step` on `tokens`, starting from `params` (kept: the
  step donates a fresh copy)."""
  train_state = jax.jit(lambda p: TrainState.create(p, tx))(params)
  batch = jax.device_put(lm_batch(tokens))
  train_state, m = compiled(train_state, batch)
  jax.block_until_ready(m)
  start = time.perf_counter()
  for _ in range(steps):
    train_state, m = compiled(train_state, batch)
  jax.block_until_ready(m)
  return tokens.size * steps / (time.perf_counter() - start)


def train_tokens_per_s(cfg: ModelConfig, tokens: np.ndarray, steps: int, model: nnx.Module | None = None,
                       sharding: LogicalSharding = LogicalSharding()) -> tuple[nnx.Module, float]:
  """(model, tokens/s) of our jitted LM train step (AdamW) on `tokens` [rows, length]."""
  model = model or init_model(CausalLM, cfg, sharding, seed=0)
  compiled, tx = compile_train_step(cfg, tokens.shape, sharding)
  return model, time_train_step(compiled, tx, nnx.to_pure_dict(nnx.state(model)), tokens, steps)


def generate_tokens_per_s(model: nnx.Module, prompts: list[list[int]], new_tokens: int) -> float:
  """Greedy generation of `new_tokens` for every prompt (no EOS: every row runs to the end)."""
  gen = Generator(model, eos_id=-1, pad_id=0)
  sampling = SamplingConfig(greedy=True, max_new_tokens=new_tokens)
  gen.generate(prompts, sampling)  # compile
  start = time.perf_counter()
  gen.generate(prompts, sampling)
  return len(prompts) * new_tokens / (time.perf_counter() - start)
