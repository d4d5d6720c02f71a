"""Serving plans: will a (quantised) chat model fit a TPU slice, and how fast will it decode?

The generation programs (prefill of a prompt batch, then one decode step with the KV cache) are
AOT-compiled for the slice, like the training planner (`xy_jax.plan`). Memory comes from the
compiled programs. Decoding is bound by memory bandwidth: a step reads every weight and the KV
cache once, so its time is estimated as max(bytes per chip / HBM bandwidth, compiled FLOPs per
chip / peak FLOP/s), with FLOPs probed on 1 and 2 unrolled layers and extrapolated (a scanned loop
body is counted once; the TPU cost model's own time estimate is unreliable for these programs).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from ml_collections import ConfigDict

from xy_jax.infer.generate import next_token, prefill
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import abstract_model, state_shardings
from xy_jax.models.llama import CACHE_AXES, CausalLM, KVCache
from xy_jax.models.model_config import ModelConfig
from xy_jax.plan.train import GIB, Chip, ProgramPlan, _compile, compiled_cost, per_device_bytes, topology
from xy_jax.sharding import LogicalSharding, make_mesh, rules_with_overrides


@dataclasses.dataclass
class ServePlan:
  config: str
  topology: str
  chips: int
  chip: Chip
  mesh: dict
  quant: str
  weights_bytes: float  # per chip
  cache_bytes: float  # per chip
  batch: int
  programs: list[ProgramPlan]
  decode_seconds: float  # one token for the whole batch

  @property
  def peak(self) -> float:
    return max(p.peak for p in self.programs)


def generation_programs(model_cfg: ModelConfig, sharding: LogicalSharding, batch: int, prompt_len: int,
              new_tokens: int):
  """(lowering thunks for prefill and decode, abstract params, abstract cache)."""
  graphdef, abs_state = abstract_model(CausalLM, model_cfg, sharding)
  sh = nnx.to_pure_dict(state_shardings(abs_state, sharding))
  params = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        nnx.to_pure_dict(abs_state), sh)
  sampling = SamplingConfig(greedy=True, max_new_tokens=new_tokens)
  rows = sharding.named(("act_batch", None))
  vec = sharding.named(("act_batch",))
  tokens = jax.ShapeDtypeStruct((batch, prompt_len), jnp.int32, sharding=rows)
  valid = jax.ShapeDtypeStruct((batch, prompt_len), jnp.bool_, sharding=rows)
  key = jax.eval_shape(lambda: jax.random.key(0))

  def prefill_fn(p, t, v, rng):
    return prefill(nnx.merge(graphdef, p), t, v, rng, sampling)

  cache = jax.eval_shape(lambda: KVCache.empty(model_cfg, batch, prompt_len + new_tokens))
  cache_sh = KVCache(sharding.named(CACHE_AXES), sharding.named(CACHE_AXES),
                     sharding.named(("cache_batch", "cache_length")), sharding.named(()))
  cache = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), cache, cache_sh)
  tok = jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=vec)

  def decode_fn(p, c, t, pos, rng):
    return next_token(nnx.merge(graphdef, p), c, t, pos, rng, jnp.int32(1), sampling)

  thunks = {
      "prefill": lambda: jax.jit(prefill_fn).lower(params, tokens, valid, key).compile(),
      "decode step": lambda: jax.jit(decode_fn, donate_argnums=1).lower(params, cache, tok, tok, key).compile(),
  }
  return thunks, params, cache


def make_serve_plan(cfg: ConfigDict, topology_name: str, quant: str, group_size: int, batch: int,
                    prompt_len: int, new_tokens: int, config_name: str = "", log=print) -> ServePlan:
  devices, chip = topology(topology_name)
  model_cfg = ModelConfig.from_dict(cfg.model).replace(
      quant=quant, quant_group_size=group_size, dtype="bfloat16", param_dtype="bfloat16",
      remat_policy="none")
  model_cfg.validate()
  mesh = make_mesh(cfg.mesh, devices)
  sharding = LogicalSharding(mesh, rules_with_overrides(cfg.mesh.get("rules", {})))
  thunks, params, cache = generation_programs(model_cfg, sharding, batch, prompt_len, new_tokens)
  programs = []
  for name, thunk in thunks.items():
    log(f"compiling {name} ...")
    programs.append(_compile(name, thunk, batch if name == "decode step" else batch * prompt_len))

  compiled = all("does not compile" not in p.label for p in programs)
  flops = []  # decode-step FLOPs per chip at 1 and 2 unrolled layers
  for n in (1, 2) if compiled else ():
    probe_cfg = model_cfg.replace(num_hidden_layers=n, scan_layers=False)
    probe, _, _ = generation_programs(probe_cfg, sharding, batch, prompt_len, new_tokens)
    flops.append(float(compiled_cost(probe["decode step"]()).get("flops", 0.0)))
  seconds = 0.0
  if compiled:
    step_flops = flops[0] + (flops[1] - flops[0]) * (model_cfg.num_hidden_layers - 1)
    moved = per_device_bytes(params) + per_device_bytes(cache)
    seconds = max(moved / chip.hbm_bytes_per_s, step_flops / chip.bf16_flops)
    programs[-1].flops = step_flops
  programs[-1].seconds = seconds
  return ServePlan(config_name, topology_name, len(devices), chip, dict(mesh.shape), quant,
                   per_device_bytes(params), per_device_bytes(cache), batch, programs, seconds)


def serve_report(plan: ServePlan) -> tuple[list[str], bool]:
  hbm = plan.chip.hbm_gib
  weights = plan.quant if plan.quant != "none" else "bfloat16"
  lines = [f"serving plan: {plan.config} ({weights} weights) on {plan.topology}: {plan.chips} chips, "
           f"{hbm:.0f} GiB HBM per chip",
           "mesh: " + " ".join(f"{k}={v}" for k, v in plan.mesh.items()),
           f"per chip: weights {plan.weights_bytes / GIB:.4g} GiB, KV cache {plan.cache_bytes / GIB:.4g} "
           f"GiB (batch {plan.batch})",
           f"{'program':<44} {'args':>7} {'out':>7} {'temp':>7} {'peak':>7}"]
  for p in plan.programs:
    lines.append(f"{p.label:<44} {p.args / GIB:>7.2f} {p.outputs / GIB:>7.2f} {p.temps / GIB:>7.2f} "
                 f"{p.peak / GIB:>7.2f}")
  fits = plan.peak <= hbm * GIB
  tps = plan.batch / plan.decode_seconds if plan.decode_seconds else 0.0
  lines += ["(memory in GiB per chip; decode-step time: weights + KV cache read once at "
            f"{plan.chip.hbm_bytes_per_s / 1e9:,.0f} GB/s, or the compiled FLOPs at peak if slower)",
            f"decode step: {plan.decode_seconds * 1e3:.2f} ms for {plan.batch} rows -> "
            f"{tps:,.0f} tokens/s" if tps else "decode step: no estimate (does not fit)",
            f"fits: {'yes' if fits else 'no'}",
            f"per-chip memory GiB: {plan.peak / GIB:.2f} of {hbm:.2f}",
            f"estimated decode tokens/s: {tps:,.0f}" if tps else "estimated decode tokens/s: n/a"]
  return lines, fits
