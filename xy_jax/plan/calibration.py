"""GPTQ calibration plans: memory and time of `quant.calibrate` for a model on a TPU slice.

The layer forward calibration runs over a chunk of rows (with each tap's Hessian, and without) is
AOT-compiled for the slice on the training config's mesh; GPTQ's memory per projection group
(output columns sharded over the mesh, the Hessian replicated) is counted (`_gptq_memory`). Memory is each program's, plus what stays resident between them: the float
model, the calibration activations of every row, and the group's Hessian.

Time is a roofline (the compiler's own estimate is unreliable for loops), stated per part:
  forward: 5 passes per layer (4 taps + the output) x chunks, compiled FLOPs per chip at peak;
  GPTQ: Cholesky and inverse of H (~k^3 float32 FLOPs, replicated) and the lazy block updates
        (2 k^2 m / chips) at float32 peak (bf16 peak / 6: float32 matmuls run as 6 bf16 passes on
        the MXU), plus the row loop: k dependent steps, each at least ROW_STEP_S (a loop iteration
        with a few small fused ops) or its bytes at HBM bandwidth, whichever is longer.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx
from ml_collections import ConfigDict

from xy_jax.models.factory import abstract_model, state_shardings
from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import ModelConfig
from xy_jax.plan.train import GIB, Chip, ProgramPlan, _compile, compiled_cost, per_device_bytes, topology
from xy_jax.quant.calibrate import SEQUENCE, _module, chunk_rows, column_sharding, layer_forward
from xy_jax.quant.gptq import block_rows
from xy_jax.sharding import LogicalSharding, make_mesh, rules_with_overrides

ROW_STEP_S = 5e-6  # one fori_loop iteration on a TPU: a conservative floor
F32_PASSES = 6
# k x k float32 temporaries of the GPTQ program; the TPU compiler's own figure for v5p, k=512,
# 1024, 2048 was 4.1, 3.0 and 7.6 of them (tests/test_plan.py checks the count at k=512).
K_SQUARES = 8


@dataclasses.dataclass
class CalibrationPlan:
  config: str
  topology: str
  chips: int
  chip: Chip
  mesh: dict
  rows: int
  length: int
  layers: int
  resident_bytes: float  # per chip: float model + calibration activations (in and out)
  programs: list[ProgramPlan]
  seconds: dict  # part -> seconds for the whole model

  @property
  def peak(self) -> float:
    return self.resident_bytes + max(p.peak for p in self.programs)


def _abstract_layer(cfg: ModelConfig, sharding: LogicalSharding):
  """(layer graphdef, one layer's abstract state with the training layout minus the layer axis,
  the whole model's abstract parameters)."""
  graphdef, abs_state = abstract_model(CausalLM, cfg, sharding)
  shardings = state_shardings(abs_state, sharding)
  model = nnx.merge(graphdef, abs_state)
  layer_graphdef, stacked = nnx.split(model.model.layers)
  stacked_sh = nnx.split(nnx.merge(graphdef, shardings).model.layers)[1]

  def one(a, s):
    return jax.ShapeDtypeStruct(a.shape[1:], a.dtype, sharding=jax.NamedSharding(s.mesh, jax.P(*s.spec[1:])))
  layer = jax.tree.map(one, stacked, stacked_sh)
  params = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        nnx.to_pure_dict(abs_state), nnx.to_pure_dict(shardings))
  return layer_graphdef, layer, params


def _gptq_memory(label: str, k: int, m_local: int, gs: int) -> ProgramPlan:
  """GPTQ's per-chip bytes, counted rather than compiled: compiling it for a TPU takes minutes per
  shape on a 2-core host and grows fast with k (v5p, k=2048: 126 s; the 70B's k=8192 group did not
  finish in 15 minutes). In: the weight's columns and H (float32). Out: the codes and scales.
  Temporaries: K_SQUARES float32 k x k arrays (dampened H, Cholesky factors, the inverse, the
  solver's workspace) and the working weight, codes and block error."""
  groups = k // gs if 0 < gs < k else 1
  return ProgramPlan(label, 4.0 * (k * m_local + k * k), k * m_local + 4.0 * groups * m_local,
                     4.0 * (K_SQUARES * k * k + 3 * k * m_local), 0.0, 0.0, 0.0, 0)


def _kept(store: list, compiled):
  store.append(compiled)
  return compiled


def make_calibration_plan(cfg: ConfigDict, topology_name: str, mode: str = "int4", group_size: int = 128,
                          rows: int = 128, length: int = 2048, batch_rows: int = 8,
                          config_name: str = "", log=print) -> CalibrationPlan:
  devices, chip = topology(topology_name)
  model_cfg = ModelConfig.from_dict(cfg.model).replace(dtype="bfloat16", param_dtype="float32",
                                                       remat_policy="none")
  model_cfg.validate()
  mesh = make_mesh(cfg.mesh, devices)
  sharding = LogicalSharding(mesh, rules_with_overrides(cfg.mesh.get("rules", {})))
  layer_graphdef, layer, params = _abstract_layer(model_cfg, sharding)
  batch_rows = chunk_rows(sharding, rows, batch_rows)
  d = model_cfg.hidden_size
  act = sharding.named(("act_batch", "act_length", "act_embed"))
  x = jax.ShapeDtypeStruct((batch_rows, length, d), jnp.bfloat16, sharding=act)
  forward = layer_forward(layer_graphdef, model_cfg)
  chunks = rows // batch_rows
  programs, seconds = [], {"forward": 0.0, "gptq cholesky": 0.0, "gptq updates": 0.0, "gptq row loop": 0.0}

  example = nnx.merge(layer_graphdef, layer)
  for tap in (None,) + tuple(g[0] for g in SEQUENCE):
    label = f"layer forward, {batch_rows} rows" + (f", H of {tap}" if tap else "")
    log(f"compiling {label} ...")
    compiled = []
    p = _compile(label, lambda tap=tap: _kept(compiled, forward.lower(layer, x, tap=tap).compile()),
                 batch_rows * length)
    p.flops = float(compiled_cost(compiled[0]).get("flops", 0.0)) if compiled else 0.0
    programs.append(p)
    seconds["forward"] += model_cfg.num_hidden_layers * chunks * p.flops / chip.bf16_flops

  gs = group_size if mode == "int4" else 0
  f32_flops = chip.bf16_flops / F32_PASSES
  for group in SEQUENCE:
    shapes = [_module(example, p).weight.shape for p in group]
    n_in = _module(example, group[0]).n_in
    k = math.prod(shapes[0][:n_in])
    m = sum(math.prod(s[n_in:]) for s in shapes)
    w_sh, _ = column_sharding(sharding, m)
    label = f"gptq {'/'.join(p.split('.')[-1] for p in group)} [{k} x {m}] (estimated)"
    programs.append(_gptq_memory(label, k, w_sh.shard_shape((k, m))[1], gs))
    m_local = w_sh.shard_shape((k, m))[1]
    block = block_rows(k, gs, 128)
    layers = model_cfg.num_hidden_layers
    seconds["gptq cholesky"] += layers * (k ** 3 * (1 / 3 + 1 + 1 / 3)) / f32_flops
    seconds["gptq updates"] += layers * 2 * k * k * m_local / f32_flops
    step_bytes = block * m_local * 4 * 3  # the block read, updated and written per row
    seconds["gptq row loop"] += layers * k * max(ROW_STEP_S, step_bytes / chip.hbm_bytes_per_s)

  # Between programs: the model, and every calibration row's layer input and output (bfloat16).
  resident = per_device_bytes(params) + 2 * per_device_bytes(
      jax.ShapeDtypeStruct((rows, length, d), jnp.bfloat16, sharding=act))
  return CalibrationPlan(config_name, topology_name, len(devices), chip, dict(mesh.shape), rows,
                         length, model_cfg.num_hidden_layers, resident, programs, seconds)


def calibration_report(plan: CalibrationPlan) -> tuple[list[str], bool]:
  hbm = plan.chip.hbm_gib
  total = sum(plan.seconds.values())
  lines = [f"GPTQ calibration plan: {plan.config} on {plan.topology}: {plan.chips} chips, {hbm:.0f} GiB "
           f"HBM per chip; {plan.rows} rows x {plan.length} tokens, {plan.layers} layers",
           "mesh: " + " ".join(f"{k}={v}" for k, v in plan.mesh.items()),
           f"resident per chip: {plan.resident_bytes / GIB:.2f} GiB (float32 model + calibration "
           "activations in and out)",
           f"{'program':<52} {'args':>7} {'out':>7} {'temp':>7} {'peak':>7}"]
  for p in plan.programs:
    lines.append(f"{p.label:<52} {p.args / GIB:>7.2f} {p.outputs / GIB:>7.2f} {p.temps / GIB:>7.2f} "
                 f"{p.peak / GIB:>7.2f}")
  lines.append("(GiB per chip; time is a roofline per part, see xy_jax/plan/calibration.py)")
  lines += [f"{part}: {s:,.0f} s" for part, s in plan.seconds.items()]
  fits = plan.peak <= hbm * GIB
  lines += [f"fits: {'yes' if fits else 'no'}",
            f"per-chip memory GiB: {plan.peak / GIB:.2f} of {hbm:.2f}",
            f"estimated calibration minutes: {total / 60:.1f}"]
  return lines, fits
