"""Pod planning by AOT compilation: the real train step, compiled for a TPU topology we do not have.

`jax.experimental.topologies` (with the `tpu` extra's libtpu) describes the slice; the stage's
step is lowered from abstract shapes (no weights, no data) onto a mesh of the slice's devices and
compiled by the TPU compiler, whose memory and cost analyses give per-chip memory, FLOPs and an
estimated step time.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import re

import jax
import numpy as np
from ml_collections import ConfigDict

import xy_jax.stages  # noqa: F401  registers every stage
from xy_jax.models.int_weights import storage_bits
from xy_jax.train.setup import setup

GIB = 2**30
LIBTPU_LOCKFILE = "/tmp/libtpu_lockfile"  # libtpu's own path: one process per host loads it


@dataclasses.dataclass(frozen=True)
class Chip:
  hbm_gib: float
  bf16_flops: float  # peak per chip
  hbm_bytes_per_s: float
  ici_bytes_per_s: float  # inter-chip interconnect, all links of one chip


# Published per-chip figures (Cloud TPU docs; ICI in Gbit/s: v4 2400, v5e 1600, v5p 4800, v6e 3584).
CHIPS = {"v4": Chip(32.0, 275e12, 1228e9, 300e9), "v5e": Chip(16.0, 197e12, 819e9, 200e9),
         "v5litepod": Chip(16.0, 197e12, 819e9, 200e9), "v5p": Chip(95.0, 459e12, 2765e9, 600e9),
         "v6e": Chip(32.0, 918e12, 1640e9, 448e9)}


def topology(name: str):
  """'v5p:4x4x4' -> (abstract devices, Chip)."""
  from jax.experimental import topologies
  kind = name.split(":")[0].split("-")[0]
  if kind not in CHIPS:
    raise ValueError(f"--topology={name!r}: unknown TPU generation (known: {', '.join(CHIPS)})")
  try:
    topo = topologies.get_topology_desc(name, "tpu")
  except Exception as e:  # libtpu missing, its lock taken, or an unknown shape
    if "libtpu multi-process lockfile" in str(e):
      raise ValueError(f"--topology={name!r}: {lock_taken(LIBTPU_LOCKFILE)}") from None
    raise ValueError(f"--topology={name!r}: cannot describe it ({str(e).splitlines()[0][:160]}); "
                     f"is the tpu extra (libtpu) installed?") from None
  return list(topo.devices), CHIPS[kind]


def lock_taken(path: str) -> str:
  """Why libtpu would not load: who holds its lock file, and what to do."""
  holders = "; ".join(f"process {pid} ({command_line(pid)})" for pid in lock_holders(path))
  return (f"libtpu's lock {path} is held by {holders or 'a process not visible from here'}; one "
          "process per host may load libtpu, so wait for it to finish (or set "
          "ALLOW_MULTIPLE_LIBTPU_LOAD=1: the planner only compiles)")


def lock_holders(path: str) -> list[int]:
  """The processes that lock `path` (/proc/locks), else those that have it open (/proc/*/fd)."""
  try:
    st = os.stat(path)
  except OSError:
    return []
  return _locking(st) or _opening(path)


def _locking(st: os.stat_result) -> list[int]:
  """Holders in /proc/locks: '1: POSIX  ADVISORY  WRITE 7896 fe:00:2147832 0 EOF'."""
  key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
  try:
    with open("/proc/locks") as f:
      rows = [line.split() for line in f]
  except OSError:
    return []
  pids = {int(r[4]) for r in rows if len(r) > 5 and "->" not in r and r[5] == key and r[4].isdigit()}
  return sorted(pids - {0})  # 0: a process in another pid namespace


def _opening(path: str) -> list[int]:
  target = os.path.realpath(path)
  pids = []
  for fd_dir in glob.glob("/proc/[0-9]*/fd"):
    try:
      if any(os.readlink(os.path.join(fd_dir, fd)) == target for fd in os.listdir(fd_dir)):
        pids.append(int(fd_dir.split("/")[2]))
    except OSError:  # another user's process, or one that just ended
      continue
  return sorted(pids)


def command_line(pid: int, limit: int = 100) -> str:
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      text = " ".join(f.read().decode(errors="replace").replace("\0", " ").split())  # one line
  except OSError:
    return "command unknown"
  return text if len(text) <= limit else text[:limit - 3] + "..."


def per_device_bytes(tree) -> int:
  """Bytes one device holds of a tree of ShapeDtypeStructs with shardings."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    shape = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
    total += math.prod(shape) * storage_bits(leaf.dtype) // 8
  return total


@dataclasses.dataclass
class ProgramPlan:
  label: str  # bucket (and program, for multi-program steps)
  args: float  # bytes per chip
  outputs: float
  temps: float
  aliased: float
  flops: float  # per chip
  seconds: float  # the compiler's estimate
  tokens: int  # tokens this program processes per step (0: not a token-throughput program)

  @property
  def peak(self) -> float:
    return self.args + self.outputs + self.temps - self.aliased


@dataclasses.dataclass
class Plan:
  config: str
  topology: str
  chips: int
  chip: Chip
  mesh: dict
  params_bytes: float
  opt_bytes: float
  programs: list[ProgramPlan]
  mfu: list[float]  # per bucket

  @property
  def peak(self) -> float:
    return max(p.peak for p in self.programs)


def _compile(label: str, lowered_fn, tokens: int) -> ProgramPlan:
  """Compile; a step that cannot fit comes back as a plan with the compiler's requirement."""
  try:
    return _program(label, lowered_fn(), tokens)
  except jax.errors.JaxRuntimeError as e:
    msg = str(e)
    found = re.search(r"required for HLO temporaries \(([\d.]+)([KMGT])\)", msg)
    if "RESOURCE_EXHAUSTED" not in msg or not found:
      raise
    temps = float(found.group(1)) * 1024 ** "KMGT".index(found.group(2)) * 1024
    return ProgramPlan(label + " (does not compile: out of HBM)", 0.0, 0.0, temps, 0.0, 0.0, 0.0,
                       tokens)


def _program(label: str, compiled, tokens: int) -> ProgramPlan:
  mem = compiled.memory_analysis()
  return ProgramPlan(label, mem.argument_size_in_bytes, mem.output_size_in_bytes,
                     mem.temp_size_in_bytes, mem.alias_size_in_bytes, 0.0, 0.0, tokens)


def compiled_cost(compiled) -> dict:
  """A compiled program's cost analysis (some jax versions wrap it in a one-element list)."""
  cost = compiled.cost_analysis()
  return cost[0] if isinstance(cost, list) else cost


def _abstract_batch(rs, spec):
  return {k: jax.ShapeDtypeStruct(shape, dtype, sharding=rs.batch_sharding)
          for k, (shape, dtype) in spec.items()}


def cost_probe(cfg: ConfigDict, devices, log) -> dict[str, tuple[float, float]]:
  """Per step shape: (FLOPs, estimated seconds) per chip for one whole step.

  XLA's cost analysis counts a loop body once, so the scanned, accumulating step under-reports.
  The probe compiles the same step unrolled, without accumulation, for one micro-batch at 1 and 2
  layers, and extrapolates linearly: cost = accum * (c1 + (c2 - c1) * (layers - 1)).
  """
  layers, accum = cfg.model.num_hidden_layers, cfg.optim.grad_accum
  costs = []
  for n in (1, 2):
    probe = ConfigDict(cfg.to_dict())
    probe.model.num_hidden_layers, probe.model.scan_layers = n, False
    # XLA's cost model cannot see inside a Pallas kernel (splash attention counts as free), so time
    # is probed with dense XLA attention: an upper bound, as dense also computes masked blocks.
    probe.model.attention_impl = "xla"
    probe.optim.grad_accum = 1
    probe.data.tokens_per_step = cfg.data.tokens_per_step // accum
    rs = setup(probe, log=lambda *_: None, with_data=False, devices=devices)
    out = {}
    for label, spec in rs.task.plan_batches().items():
      # A step of several programs (DPO: reference, then the gradient step) costs their sum.
      flops = seconds = 0.0
      for thunk in rs.learner.programs(rs.train_step, rs.abstract_state, _abstract_batch(rs, spec)).values():
        cost = compiled_cost(thunk())
        flops += float(cost.get("flops", 0.0))
        seconds += float(cost.get("optimal_seconds", 0.0))
      out[label] = (flops, seconds)
    costs.append(out)
  return {label: tuple(accum * (a + (b - a) * (layers - 1)) for a, b in zip(costs[0][label], costs[1][label]))
          for label in costs[0]}


def make_plan(cfg: ConfigDict, topology_name: str, config_name: str = "", log=print) -> Plan:
  devices, chip = topology(topology_name)
  rs = setup(cfg, log=log, with_data=False, devices=devices)
  state = rs.abstract_state
  programs, mfus, shapes = [], [], []
  for label, spec in rs.task.plan_batches().items():
    batch = _abstract_batch(rs, spec)
    rows, length = next(iter(spec.values()))[0][:2]
    log(f"compiling {label} ...")
    thunks = rs.learner.programs(rs.train_step, state, batch)
    if not rs.learner.estimates_time:
      # PPO: memory per program; loop-heavy programs (generation) have no reliable time estimate.
      programs += [_compile(f"{label}: {name}", thunk, 0) for name, thunk in thunks.items()]
      continue
    *others, (last_name, last) = thunks.items()  # several programs: memory each, time on the last row
    programs += [_compile(f"{label}: {name}", thunk, 0) for name, thunk in others]
    programs.append(_compile(f"{label}: {last_name}" if others else label, last, rows * length))
    shapes.append((len(programs) - 1, label, length))
  # Time is probed only for a step that fits: a refused plan needs no estimate.
  fits = all("does not compile" not in p.label and p.peak <= chip.hbm_gib * GIB for p in programs)
  if shapes and fits:
    probe = cost_probe(cfg, devices, log)
    for index, label, length in shapes:
      piece = programs[index]
      piece.flops, piece.seconds = probe[label]
      tps = piece.tokens / piece.seconds if piece.seconds else 0.0
      mfus.append(tps * rs.task.flops_per_token(length) / (chip.bf16_flops * len(devices)))
  return Plan(config_name, topology_name, len(devices), chip, dict(rs.mesh.shape),
              per_device_bytes(state.params), per_device_bytes(state.opt_state), programs, mfus)


def report(plan: Plan, max_fraction: float = 1.0) -> tuple[list[str], bool]:
  hbm = plan.chip.hbm_gib
  lines = [f"plan: {plan.config} on {plan.topology}: {plan.chips} chips, {hbm:.0f} GiB HBM and "
           f"{plan.chip.bf16_flops / 1e12:.0f} TFLOP/s (bf16) per chip",
           "mesh: " + " ".join(f"{k}={v}" for k, v in plan.mesh.items()),
           f"per chip: parameters {plan.params_bytes / GIB:.2f} GiB, optimizer state "
           f"{plan.opt_bytes / GIB:.2f} GiB",
           f"{'program':<44} {'args':>7} {'out':>7} {'temp':>7} {'peak':>7} {'TFLOP/step':>11} "
           f"{'est. s':>8} {'tokens/s':>10}"]
  for p in plan.programs:
    tps = f"{p.tokens / p.seconds:,.0f}" if p.tokens and p.seconds else "-"
    tflop = p.flops * plan.chips / 1e12
    flops = (f"{tflop:,.0f}" if tflop >= 100 else f"{tflop:.3g}") if p.flops else "-"
    secs = f"{p.seconds:.4g}" if p.seconds else "-"
    lines.append(f"{p.label:<44} {p.args / GIB:>7.2f} {p.outputs / GIB:>7.2f} {p.temps / GIB:>7.2f} "
                 f"{p.peak / GIB:>7.2f} {flops:>11} {secs:>8} {tps:>10}")
  fits = plan.peak <= hbm * GIB * max_fraction
  limit = f" (limit {max_fraction:.0%} of HBM)" if max_fraction < 1 else ""
  if plan.mfu:
    lines.append(f"(memory in GiB per chip; FLOPs and time: the compiler's cost model, probed "
                 f"unrolled with dense XLA attention and extrapolated over layers and micro-batches; "
                 f"MFU averaged over {len(plan.mfu)} step shape(s))")
    mfu = f"{100 * float(np.mean(plan.mfu)):.1f}%"
  elif not fits:
    lines.append("(memory in GiB per chip; no time estimate for a step that does not fit)")
    mfu = "n/a"
  else:
    lines.append("(memory in GiB per chip; a multi-program step gets no cost-model time here: PPO's "
                 "generation is a loop the cost model counts once (its iteration time follows, by "
                 "roofline), DPO's reference runs apart)")
    mfu = "n/a"
  lines += [f"fits: {'yes' if fits else 'no'}{limit}",
            f"per-chip memory GiB: {plan.peak / GIB:.2f} of {hbm:.2f}",
            f"estimated MFU: {mfu}"]
  return lines, fits
