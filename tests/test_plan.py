"""tools/plan.py: AOT compilation for a TPU topology on a CPU-only machine (needs libtpu)."""

import os
import subprocess
import sys

import pytest

from tests.train.train_helpers import ROOT

pytest.importorskip("libtpu", reason="the tpu extra (libtpu) is not installed")


def _plan(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plan.py"), *args],
                        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


@pytest.mark.heavy
def test_plan_tiny_config_on_a_small_v5p_slice():
  proc = _plan(f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v5p:2x2x1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].startswith("plan: ") and "4 chips" in lines[0]
  assert lines[1] == "mesh: data=1 fsdp=4 tensor=1"
  assert lines[2].startswith("per chip: parameters ") and "optimizer state" in lines[2]
  rows = {line.split()[1]: line.split() for line in lines if line.startswith("bucket ")}
  assert set(rows) == {"64", "128", "256"}
  for cells in rows.values():
    assert float(cells[-5]) > 0  # peak GiB
    assert float(cells[-3].replace(",", "")) > 0 and float(cells[-2]) > 0  # TFLOP/step, seconds
  assert lines[-3] == "fits: yes"
  assert lines[-2].startswith("per-chip memory GiB: ") and lines[-2].endswith(" of 95.00")
  assert lines[-1].startswith("estimated MFU: ") and lines[-1].endswith("%")


@pytest.mark.heavy
def test_plan_refuses_a_step_that_cannot_fit():
  # XuanYuan-6B: fp32 weights and Adam state alone are 18 GiB per chip over 4 v5e chips (16 GiB).
  proc = _plan(f"--config={ROOT}/configs/pretrain_xuanyuan6b.py", "--topology=v5e:2x2",
               "--mesh=1,4,1")
  assert proc.returncode == 1, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[-3] == "fits: no"
  used, total = lines[-2].removeprefix("per-chip memory GiB: ").split(" of ")
  assert float(used) > float(total) == 16.0


def test_unknown_topology_is_one_line():
  proc = _plan(f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v9x:2x2")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: --topology='v9x:2x2': unknown TPU")


@pytest.mark.heavy
def test_serving_plan_int4_halves_int8_weights():
  per_chip = {}
  for quant in ("int8", "int4"):
    proc = _plan(f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v5e:2x2", "--mesh=2,1,2",
                 f"--serve={quant}", "--group_size=32", "--prompt_len=64", "--new_tokens=64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("serving plan: ") and f"({quant} weights) on v5e:2x2: 4 chips" in lines[0]
    assert lines[1] == "mesh: data=2 fsdp=1 tensor=2"
    assert {line.split()[0] for line in lines[4:6]} == {"prefill", "decode"}
    assert lines[-3] == "fits: yes" and lines[-2].endswith(" of 16.00")
    assert float(lines[-1].removeprefix("estimated decode tokens/s: ").replace(",", "")) > 0
    per_chip[quant] = float(lines[2].split("weights ")[1].split(" GiB")[0])
  assert 0 < per_chip["int4"] < per_chip["int8"]


@pytest.mark.heavy
def test_serving_plan_bf16_70b_does_not_fit_v5e8():
  proc = _plan(f"--config={ROOT}/configs/pretrain_xuanyuan2_70b.py", "--topology=v5e:2x4",
               "--mesh=1,1,8", "--serve=bfloat16", "--prompt_len=2048", "--new_tokens=512")
  assert proc.returncode == 1, proc.stderr[-2000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[2].startswith("per chip: weights 17.14 GiB")
  assert lines[-3] == "fits: no" and lines[-1] == "estimated decode tokens/s: n/a"


STAGE_BYTES = """
import importlib.util, json, os
from xy_jax.plan.train import per_device_bytes, topology
from xy_jax.train.setup import setup
spec = importlib.util.spec_from_file_location("cpt", os.path.join("configs", "continue_llama2_70b.py"))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
devices, _ = topology("v5p:4x4x8")
out = {}
for arg in ("stage1", "stage2"):
  state = setup(module.get_config(arg), log=lambda *_: None, with_data=False, devices=devices).abstract_state
  vocab = {"head": state.params["lm_head"], "embed": state.params["model"]["embed_tokens"]}
  out[arg] = [per_device_bytes(state.params), per_device_bytes(state.opt_state), per_device_bytes(vocab)]
print(json.dumps(out))
"""


def test_stage_one_optimizer_state_is_the_embeddings_share():
  """The planner's per-chip figures for the two continued-pretraining stages (no compile: they come
  from the abstract state on the slice's devices; in a child process, as libtpu holds a lock)."""
  import json
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run([sys.executable, "-c", STAGE_BYTES], capture_output=True, text=True, env=env,
                        cwd=ROOT, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  figures = json.loads(proc.stdout.strip().splitlines()[-1])
  (params1, opt1, embeddings), (params2, opt2, _) = figures["stage1"], figures["stage2"]
  assert 0 <= opt1 - 2 * embeddings <= 16  # Adam's two moments of the embeddings, and its counters
  assert opt2 > 20 * opt1  # 0.15 vs 4.14 GiB per chip (the replicated vocabulary weighs 4x)
  # The frozen parameters are held in bfloat16: half the bytes of stage 2's float32 copy.
  assert params1 - embeddings == pytest.approx((params2 - embeddings) / 2, rel=1e-6)


def test_ppo_plan_times_the_decode_step_in_both_layouts_and_the_parts_add_up():
  import re
  proc = _plan(f"--config={ROOT}/configs/ppo_tiny.py", "--topology=v5p:2x2x1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  number = lambda s: float(re.search(r"([\d.e+-]+)", s).group(1))  # noqa: E731
  rollout_ms = number(lines[-4].removeprefix("decode step (rollout layout): "))
  training_ms = number(lines[-3].removeprefix("decode step (training layout): "))
  iteration_s = number(lines[-2].removeprefix("estimated seconds per iteration: "))
  share = number(lines[-1].removeprefix("rollout share: "))
  assert lines[-4].endswith(" ms") and lines[-3].endswith(" ms") and lines[-1].endswith("%")
  assert 0 < rollout_ms < training_ms and iteration_s > 0 and 0 < share < 100
  head = next(line for line in lines if line.startswith("rollout layout: "))
  assert head == "rollout layout: data=1 fsdp=2 tensor=2 (training: data=1 fsdp=4 tensor=1)"

  def parts(prefix):
    line = next(line for line in lines if line.strip().startswith(prefix))
    return [float(x) for x in re.findall(r"(?:HBM|FLOPs|collectives) ([\d.e+-]+) ms", line)]

  for prefix, total in (("rollout layout decode step", rollout_ms), ("training layout decode step", training_ms)):
    hbm, flops, coll = parts(prefix)
    assert hbm > 0 and flops > 0 and coll > 0  # fsdp gathers weights; tensor parallelism reduces
    assert abs(hbm + flops + coll - total) <= 2e-3 * total + 1e-6
  per_iteration = next(line for line in lines if line.strip().startswith("per iteration:"))
  reshard, decode, experience, update = (float(x) for x in re.findall(r"([\d.e+-]+) s\b", per_iteration))
  assert "32 x decode step" in per_iteration and abs(decode - 32 * rollout_ms / 1e3) <= 2e-3 * decode
  assert abs(reshard + decode + experience + update - iteration_s) <= 2e-3 * iteration_s
  assert abs(100 * (reshard + decode) / iteration_s - share) < 0.2


def test_collective_bytes_reads_sync_and_async_collectives_from_hlo():
  from xy_jax.plan.rollout import collective_bytes
  hlo = "\n".join([
      "  %all-gather.1 = bf16[8,1024]{1,0} all-gather(bf16[2,1024]{1,0} %p), dimensions={0}",
      "  %ags = (bf16[2,64]{1,0}, bf16[8,64]{1,0}) all-gather-start(bf16[2,64]{1,0} %q), dimensions={0}",
      "  %agd = bf16[8,64]{1,0} all-gather-done((bf16[2,64]{1,0}, bf16[8,64]{1,0}) %ags)",
      "  %ar = (f32[16]{0}, f32[4,4]{1,0}) all-reduce(f32[16]{0} %a, f32[4,4]{1,0} %b), to_apply=%add",
      "  %rs = f32[4]{0} reduce-scatter(f32[16]{0} %c), dimensions={0}",
      "  %add = f32[16]{0} add(f32[16]{0} %a, f32[16]{0} %a)",
  ])
  got = collective_bytes(hlo)
  assert got["all-gather"] == 8 * 1024 * 2 + 8 * 64 * 2
  assert got["all-reduce"] == 16 * 4 + 16 * 4 and got["reduce-scatter"] == 16
  assert got["all-to-all"] == 0 and got["collective-permute"] == 0


def test_dpo_plan_times_reference_and_step_together():
  proc = _plan(f"--config={ROOT}/configs/dpo_tiny.py", "--topology=v5p:2x2x1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  reference = next(line.split() for line in lines if line.startswith("pairs x 64: reference"))
  step = next(line.split() for line in lines if line.startswith("pairs x 64: step"))
  assert reference[-3:] == ["-", "-", "-"]  # memory only: its time is in the step's row
  assert float(step[-3]) > 0 and float(step[-2]) > 0 and float(step[-1].replace(",", "")) > 0
  assert lines[-1].startswith("estimated MFU: ") and lines[-1].endswith("%") and "n/a" not in lines[-1]


@pytest.mark.heavy
def test_calibration_plan_tiny_config():
  proc = _plan(f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v5p:2x2x1", "--calibrate=int4",
               "--group_size=32", "--calibration_rows=16", "--calibration_length=128")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].startswith("GPTQ calibration plan: ") and "16 rows x 128 tokens, 2 layers" in lines[0]
  programs = [line for line in lines if line.startswith("layer forward") or "(estimated)" in line]
  assert len(programs) == 9  # the output pass, 4 taps, 4 GPTQ groups
  assert "gptq down_proj [352 x 128] (estimated)" in proc.stdout
  parts = {line.split(":")[0]: float(line.split()[-2].replace(",", "")) for line in lines
           if line.startswith(("forward:", "gptq cholesky:", "gptq updates:", "gptq row loop:"))}
  assert len(parts) == 4
  assert lines[-3] == "fits: yes" and lines[-1].startswith("estimated calibration minutes: ")


def test_counted_gptq_memory_bounds_the_compiled_program():
  """The planner counts GPTQ's memory instead of compiling it for big shapes: the count must not
  be below what the TPU compiler reports for a shape it compiles quickly."""
  import jax
  import jax.numpy as jnp
  from xy_jax.plan.calibration import _gptq_memory
  from xy_jax.plan.train import topology
  from xy_jax.quant.gptq import gptq
  devices, _ = topology("v5p:2x2x1")
  mesh = jax.sharding.Mesh(devices, ("x",))
  k, m = 512, 512
  w = jax.ShapeDtypeStruct((k, m), jnp.float32, sharding=jax.NamedSharding(mesh, jax.P(None, "x")))
  h = jax.ShapeDtypeStruct((k, k), jnp.float32, sharding=jax.NamedSharding(mesh, jax.P()))
  mem = gptq.lower(w, h, mode="int4", group_size=32).compile().memory_analysis()
  counted = _gptq_memory("x", k, m // 4, 32)
  assert counted.args == mem.argument_size_in_bytes
  assert counted.outputs >= mem.output_size_in_bytes and counted.temps >= mem.temp_size_in_bytes
