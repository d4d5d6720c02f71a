"""Planned time of a PPO iteration: generation by roofline, experience and updates by the cost model.

Generation is most of an RLHF iteration's wall time and a loop the TPU cost model counts once, so
the decode step (one token for every prompt, KV cache of prompt + answer) is compiled for the slice
in the rollout layout and in the training layout, and timed by a roofline whose parts add up:

  HBM bytes the compiled step accesses (at least its weights and KV cache) / the chip's HBM bandwidth
  + FLOPs / the chip's peak
  + bytes of every collective in the compiled HLO (all-gather, all-reduce, reduce-scatter,
    all-to-all, collective-permute; result sizes, per chip) / the chip's ICI bandwidth

(a sum, so an upper bound: the hardware overlaps some of it). Each part is probed on 1 and 2
unrolled layers and extrapolated over the layers. An iteration = the rollout layout's reshard (the
actor's bytes per chip over ICI) + answer length x decode step + experience + ppo_epochs x
mini_batches updates, the last two from the compiler's cost model on programs unrolled at one and two
layers per model and extrapolated over each model's depth.
"""

from __future__ import annotations

import dataclasses
import math
import re

import jax
from ml_collections import ConfigDict

from xy_jax.models.int_weights import storage_bits
from xy_jax.plan.train import Chip, compiled_cost, per_device_bytes, topology
from xy_jax.plan.serving import generation_programs
from xy_jax.sharding import LogicalSharding
from xy_jax.train.setup import setup
from xy_jax.weights.cast import cast_floats

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
_OP = re.compile(r"=\s*(.+?)\s+(" + "|".join(COLLECTIVES) + r")(-start)?\(")
_ARRAY = re.compile(r"\b([a-z]+[0-9]*)\[([0-9,]*)\]")
_BITS = {"pred": 8, "s4": 4, "u4": 4}


def _array_bytes(text: str) -> list[int]:
  out = []
  for dtype, dims in _ARRAY.findall(text):
    bits = _BITS.get(dtype) or int(re.sub(r"[^0-9]", "", dtype) or 32)
    out.append(math.prod(int(d) for d in dims.split(",") if d) * bits // 8)
  return out


def collective_bytes(hlo: str) -> dict[str, int]:
  """Bytes per chip each kind of collective produces in a compiled (per-device) HLO module. An
  async `-start` op's result tuple holds its operand too: its last array is the result."""
  totals = {k: 0 for k in COLLECTIVES}
  for line in hlo.splitlines():
    m = _OP.search(line)
    if not m:
      continue
    sizes = _array_bytes(m.group(1))
    if sizes:
      totals[m.group(2)] += sizes[-1] if m.group(3) else sum(sizes)
  return totals


@dataclasses.dataclass
class Roofline:
  hbm_bytes: float
  flops: float
  collectives: dict[str, float]
  chip: Chip

  @property
  def hbm_s(self) -> float:
    return self.hbm_bytes / self.chip.hbm_bytes_per_s

  @property
  def flops_s(self) -> float:
    return self.flops / self.chip.bf16_flops

  @property
  def collective_s(self) -> float:
    return sum(self.collectives.values()) / self.chip.ici_bytes_per_s

  @property
  def seconds(self) -> float:
    return self.hbm_s + self.flops_s + self.collective_s

  def describe(self) -> str:
    coll = ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, v in self.collectives.items() if v) or "none"
    return (f"HBM {self.hbm_s * 1e3:.4g} ms ({self.hbm_bytes / 2**30:.4g} GiB) + FLOPs "
            f"{self.flops_s * 1e3:.4g} ms + collectives {self.collective_s * 1e3:.4g} ms ({coll})")


def decode_roofline(actor_cfg, sharding: LogicalSharding, batch: int, prompt_len: int, answer_len: int,
                    chip: Chip) -> Roofline:
  """One decode step of `batch` rows in `sharding`'s layout, extrapolated from 1 and 2 layers."""
  probes = []
  for n in (1, 2):
    probe_cfg = actor_cfg.replace(num_hidden_layers=n, scan_layers=False)
    thunks, _, _ = generation_programs(probe_cfg, sharding, batch, prompt_len, answer_len)
    compiled = thunks["decode step"]()
    cost = compiled_cost(compiled)
    probes.append((float(cost.get("bytes accessed", 0.0)), float(cost.get("flops", 0.0)),
                   collective_bytes(compiled.as_text())))
  layers = actor_cfg.num_hidden_layers
  grow = lambda a, b: a + (b - a) * (layers - 1)  # noqa: E731
  (b1, f1, c1), (b2, f2, c2) = probes
  # A step reads at least every weight and the KV cache it holds (the cost model's byte count can
  # fall below that when it fuses or skips an operand).
  _, params, cache = generation_programs(actor_cfg, sharding, batch, prompt_len, answer_len)
  floor = per_device_bytes(params) + per_device_bytes(cache)
  return Roofline(max(grow(b1, b2), floor), grow(f1, f2), {k: max(grow(c1[k], c2[k]), 0.0) for k in c1}, chip)


@dataclasses.dataclass
class RolloutPlan:
  rollout_mesh: dict | None  # None: rollouts decode in the training layout
  training_mesh: dict
  rollout: Roofline | None
  training: Roofline
  answer_len: int
  reshard_s: float
  experience_s: float
  update_s: float
  updates: int

  @property
  def decode_s(self) -> float:
    return (self.rollout or self.training).seconds

  @property
  def generation_s(self) -> float:
    return self.answer_len * self.decode_s + self.reshard_s

  @property
  def iteration_s(self) -> float:
    return self.generation_s + self.experience_s + self.update_s


def _probe_seconds(cfg: ConfigDict, devices, actor_layers: int, critic_layers: int | None) -> dict[str, float]:
  """The cost model's seconds for experience and one update, all models unrolled at these depths."""
  probe = ConfigDict(cfg.to_dict())
  probe.model.num_hidden_layers, probe.model.scan_layers = actor_layers, False
  probe.ppo.critic_preset_layers = critic_layers
  probe.optim.grad_accum = 1  # the whole mini-batch in one pass: no loop for the cost model to miss
  rs = setup(probe, log=lambda *_: None, with_data=False, devices=devices)
  batch = {k: jax.ShapeDtypeStruct(shape, dtype, sharding=rs.batch_sharding)
           for k, (shape, dtype) in next(iter(rs.task.plan_batches().values())).items()}
  thunks = rs.learner.programs(rs.train_step, rs.abstract_state, batch)
  return {name: float(compiled_cost(thunks[name]()).get("optimal_seconds", 0.0)) for name in ("experience", "update")}


def experience_and_update_seconds(cfg: ConfigDict, devices) -> dict[str, float]:
  """Linear in each model's depth: probes at (actor, critic) layers (1, 1), (2, 1), (1, 2), then
  cost(A, C) = c11 + (A - 1)(c21 - c11) + (C - 1)(c12 - c11). Without a critic preset the critic
  has the actor's shape, and one depth is probed."""
  actor_layers = cfg.model.num_hidden_layers
  if not cfg.ppo.critic_preset:
    one, two = (_probe_seconds(cfg, devices, n, None) for n in (1, 2))
    return {k: max(one[k] + (two[k] - one[k]) * (actor_layers - 1), 0.0) for k in one}
  from xy_jax.models.presets import get_preset
  critic_layers = get_preset(cfg.ppo.critic_preset).num_hidden_layers
  c11, c21, c12 = (_probe_seconds(cfg, devices, a, c) for a, c in ((1, 1), (2, 1), (1, 2)))
  return {k: max(c11[k] + (actor_layers - 1) * (c21[k] - c11[k]) + (critic_layers - 1) * (c12[k] - c11[k]), 0.0)
          for k in c11}


def make_rollout_plan(cfg: ConfigDict, topology_name: str, log=print) -> RolloutPlan:
  devices, chip = topology(topology_name)
  rs = setup(cfg, log=lambda *_: None, with_data=False, devices=devices)
  p, actor_cfg = cfg.ppo, rs.model_cfg
  batch = p.prompts_per_step
  layout = rs.learner.layout
  log("roofline: decode step in the training layout ...")
  training = decode_roofline(actor_cfg, rs.sharding, batch, p.max_prompt_len, p.max_answer_len, chip)
  rollout, reshard_s = None, 0.0
  if layout is not None:
    log("roofline: decode step in the rollout layout ...")
    serving_cfg = actor_cfg.replace(param_dtype=actor_cfg.dtype)  # weights held in the compute dtype
    rollout = decode_roofline(serving_cfg, layout.sharding, batch, p.max_prompt_len, p.max_answer_len, chip)
    # What each chip receives: its serving shard of the actor, float weights in the compute dtype.
    actor = rs.abstract_state.params["actor"]
    moved = 0
    for a, sh in zip(jax.tree.leaves(cast_floats(actor, layout.dtype)), jax.tree.leaves(layout.param_shardings)):
      moved += math.prod(sh.shard_shape(a.shape)) * storage_bits(a.dtype) // 8
    reshard_s = moved / chip.ici_bytes_per_s

  log("cost model: experience and update, probed on unrolled layers ...")
  seconds = experience_and_update_seconds(cfg, devices)
  updates = p.ppo_epochs * p.mini_batches
  return RolloutPlan(None if layout is None else dict(layout.sharding.mesh.shape), dict(rs.mesh.shape),
                     rollout, training, p.max_answer_len, reshard_s, seconds["experience"],
                     updates * seconds["update"], updates)


def rollout_report(plan: RolloutPlan) -> list[str]:
  mesh = lambda m: " ".join(f"{k}={v}" for k, v in m.items())  # noqa: E731
  lines = [f"rollout layout: {mesh(plan.rollout_mesh) if plan.rollout_mesh else 'the training layout'} "
           f"(training: {mesh(plan.training_mesh)})"]
  if plan.rollout is not None:
    lines.append(f"  rollout layout decode step = {plan.rollout.describe()}")
  lines.append(f"  training layout decode step = {plan.training.describe()}")
  lines.append(f"  per iteration: reshard {plan.reshard_s:.4g} s + {plan.answer_len} x decode step "
               f"{plan.answer_len * plan.decode_s:.4g} s + experience {plan.experience_s:.4g} s + "
               f"{plan.updates} update(s) {plan.update_s:.4g} s (experience and updates: the compiler's "
               f"cost model, probed on unrolled layers)")
  lines += [f"decode step (rollout layout): {plan.decode_s * 1e3:.4g} ms",
            f"decode step (training layout): {plan.training.seconds * 1e3:.4g} ms",
            f"estimated seconds per iteration: {plan.iteration_s:.4g}",
            f"rollout share: {100 * plan.generation_s / plan.iteration_s:.1f}%"]
  return lines
