"""Every GPU check in one command, within a time budget (`tools/gpu_check.sh`, `make gpu-check`):

  python -m xy_jax.main.gpu_check --out gpu_check_out               # on the GPU host, <= --budget_s
  python -m xy_jax.main.gpu_check --out /tmp/gc --smoke             # the same code paths, tiny, on CPU

  attention  cudnn (packed rows as per-document offsets) and xla against a float32 reference on
             packed rows with segment ids, forward and gradients, with times; fails loudly when a
             kernel ignores the segments
  train      tokens/s and MFU of the ~1.3B preset (gpu_1b3), with the cheapest remat policy whose
             compiled memory (the compiler's own analysis) fits the device
  buckets    rows of each `--buckets` length at `--bucket_tokens` tokens per step; longest/shortest
  decode     decode tokens/s per `--decode_batches` size, ours vs transformers `generate`, and the
             share of HBM bandwidth our decode step uses
  bench      tools/bench.py beside transformers + torch (optional: last, skipped when time is short)

Each section runs in a process of its own (its device memory is gone when it ends) and starts only
when the budget has the time it usually needs; one still running at the deadline is stopped and
reported as skipped. report.json and report.md in --out are rewritten after every section, and
each section prints its figures in one line, so a run cut short keeps what it measured. Exits 1
when a section failed (a kernel ignoring segments, a crash); skipped sections and unmet goals
(MFU >= 55%, 16k/2k >= 0.9) are reported, not failures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable

import numpy as np
from absl import flags

from xy_jax import cli

SECTIONS = ("attention", "train", "buckets", "decode", "bench")
flags.DEFINE_string("out", None, "directory for report.json and report.md", required=True)
flags.DEFINE_bool("smoke", False, "tiny sizes on any device (CPU): the same code paths, for tests")
flags.DEFINE_float("budget_s", 480, "wall-clock budget; a section that cannot finish in what is left is skipped")
flags.DEFINE_list("sections", list(SECTIONS), "which checks to run, in this order")
flags.DEFINE_list("buckets", None, "bucket row lengths (default 2048,16384; smoke 64,128,256)")
flags.DEFINE_integer("bucket_tokens", None, "tokens per step in the bucket table (default 32768)")
flags.DEFINE_integer("steps", None, "timed steps per train measurement (default 5)")
flags.DEFINE_list("decode_batches", None, "decode batch sizes (default 1,8,64)")
flags.DEFINE_integer("new_tokens", None, "tokens generated per row when timing decode (default 128)")
flags.DEFINE_string("child_section", None, "(internal) run one section and write its result")
flags.DEFINE_string("child_result", None, "(internal) where the section's result goes")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FULL = dict(attn_rows=(2048, 8192), attn_heads=(16, 128), preset="gpu_1b3", seq=2048, train_rows=8,
            buckets=(2048, 16384), bucket_tokens=32768, bench=("--batch=4", "--seq=2048", "--new_tokens=128"),
            decode_batches=(1, 8, 64), prompt_len=128, new_tokens=128, dtype="bfloat16", steps=5)
SMOKE = dict(attn_rows=(128, 256), attn_heads=(4, 32), preset="tiny", seq=128, train_rows=4,
             buckets=(64, 128, 256), bucket_tokens=1024, bench=("--batch=2", "--seq=64", "--new_tokens=8"),
             decode_batches=(1, 4), prompt_len=16, new_tokens=8, dtype="float32", steps=2)
# Seconds a section usually needs on one H200 (compiles included): it starts only with this left.
MIN_SECONDS = {"attention": 45, "train": 90, "buckets": 120, "decode": 90, "bench": 120}
SMOKE_MIN_SECONDS = {"attention": 10, "train": 10, "buckets": 15, "decode": 15, "bench": 30}
GOALS = {"mfu": 0.55, "bucket_ratio": 0.9}
MEMORY_HEADROOM = 0.9  # of the device's memory a program may plan for (the allocator needs slack)


def profile() -> dict:
  """The sizes of this run: the smoke or full profile with the sizing flags applied."""
  p = dict(SMOKE if FLAGS.smoke else FULL)
  if FLAGS.buckets:
    p["buckets"] = tuple(int(b) for b in FLAGS.buckets)
  if FLAGS.decode_batches:
    p["decode_batches"] = tuple(int(b) for b in FLAGS.decode_batches)
  for name in ("bucket_tokens", "steps", "new_tokens"):
    if getattr(FLAGS, name) is not None:
      p[name] = getattr(FLAGS, name)
  p["bench"] = (*p["bench"], f"--steps={p['steps']}")
  return p


# ---------------------------------------------------------------- the budget (no JAX in this part)

class Deadline:
  def __init__(self, budget_s: float, clock: Callable[[], float] = time.monotonic):
    self.clock = clock
    self.end = clock() + budget_s

  def left(self) -> float:
    return self.end - self.clock()


def run_sections(names, deadline: Deadline, run_one: Callable[[str, float], dict], min_seconds: dict,
                 on_done: Callable[[str, dict], None]) -> dict:
  """Runs each section that the time left allows: `run_one(name, seconds_left)` -> its result.
  A section with less than `min_seconds[name]` left is skipped without starting."""
  results = {}
  for name in names:
    left = deadline.left()
    if left < min_seconds[name]:
      results[name] = {"skipped": f"{max(left, 0):.0f} s of the budget left; the section needs about "
                                  f"{min_seconds[name]} s"}
    else:
      results[name] = run_one(name, left)
    on_done(name, results[name])
  return results


def _child_env() -> dict:
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
  return env


def _child_args() -> list[str]:
  args = [f"--out={FLAGS.out}", f"--budget_s={FLAGS.budget_s}"] + (["--smoke"] if FLAGS.smoke else [])
  for name in ("buckets", "decode_batches"):
    if getattr(FLAGS, name):
      args.append(f"--{name}={','.join(getattr(FLAGS, name))}")
  for name in ("bucket_tokens", "steps", "new_tokens"):
    if getattr(FLAGS, name) is not None:
      args.append(f"--{name}={getattr(FLAGS, name)}")
  return args


def run_in_child(name: str, seconds: float) -> dict:
  """One section in its own process, stopped at `seconds`; {"device": ..., "result"|"error": ...}."""
  with tempfile.TemporaryDirectory() as d:
    result_file = os.path.join(d, "result.json")
    cmd = [sys.executable, "-m", "xy_jax.main.gpu_check", f"--child_section={name}",
           f"--child_result={result_file}", *_child_args()]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=_child_env(), cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE,
                            text=True)
    try:
      _, stderr = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.communicate()
      return {"result": {"skipped": f"stopped at the deadline after {time.monotonic() - start:.0f} s"}}
    if os.path.exists(result_file):
      with open(result_file) as f:
        return json.load(f)
    return {"error": f"the section's process exited with {proc.returncode} and no result: "
                     f"{stderr.strip()[-1500:]}"}


def write_report(out: str, report: dict) -> None:
  """report.json and report.md, each replaced whole (a reader never sees half of one)."""
  os.makedirs(out, exist_ok=True)
  for name, text in (("report.json", json.dumps(report, indent=2)), ("report.md", markdown(report))):
    tmp = os.path.join(out, f".{name}.tmp")
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, os.path.join(out, name))


def summary_line(name: str, section: dict) -> str:
  """The section's figures in one line."""
  if "skipped" in section:
    return f"[{name}] skipped: {section['skipped']}"
  if "error" in section:
    return f"[{name}] FAILED: {section['error'][:300]}"
  pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
  if name == "attention":
    parts = [f"{length} {impl} fwd {r[impl]['forward_max_abs_diff_vs_f32']:.2g} "
             f"{'IGNORES SEGMENTS ' if r[impl]['ignores_segments'] else ''}{r[impl]['ms']:.2f} ms"
             for length, r in section["rows"].items() for impl in section["kernels"]]
    return f"[attention] {section['dtype']}: " + "; ".join(parts)
  if name == "train":
    return (f"[train] {section['preset']} seq {section['seq']} x {section['rows']}, remat "
            f"{section['remat_policy']}: {section['tokens_per_s']:,.0f} tokens/s, MFU {pct(section['mfu'])}")
  if name == "buckets":
    table = ", ".join(f"{k}: {v['tokens_per_s']:,.0f}" for k, v in section["table"].items())
    return f"[buckets] tokens/s {table}; longest/shortest {section['longest_over_shortest']:.3f}"
  if name == "decode":
    rows = ", ".join(f"b{b} {r['ours_tokens_per_s']:,.0f} vs {r['transformers_tokens_per_s']:,.0f} "
                     f"(HBM {pct(r['hbm_fraction'])})" for b, r in section["batches"].items())
    return f"[decode] tokens/s ours vs transformers: {rows}"
  return f"[bench] train ratio {section.get('train_ratio')}, generate ratio {section.get('generate_ratio')}"


def orchestrate(deadline: Deadline) -> int:
  start = time.monotonic()
  unknown = [s for s in FLAGS.sections if s not in SECTIONS]
  if unknown:
    raise SystemExit(f"--sections: {unknown[0]!r} is not one of {', '.join(SECTIONS)}")
  probe = run_in_child("device", max(deadline.left(), 30))
  if "error" in probe:
    raise SystemExit(f"gpu_check: could not start JAX: {probe['error']}")
  device = probe["device"]
  if device["platform"] != "gpu" and not FLAGS.smoke:
    raise SystemExit(f"gpu_check: the default device is {device['platform']}, not a GPU; use --smoke for the "
                     "tiny CPU run")
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=ROOT).stdout.strip() or "unknown"
  report = {"device": device["description"], "date": time.strftime("%Y-%m-%d"), "commit": commit,
            "smoke": FLAGS.smoke, "budget_s": FLAGS.budget_s, "sizes": profile(),
            "peak_bf16_flops": device["peak"][0] if device["peak"] else None,
            "peak_hbm_bytes_per_s": device["peak"][1] if device["peak"] else None,
            "memory_limit_bytes": device["memory_limit"], "sections": {}, "failed": [], "skipped": [],
            "seconds": 0.0}

  def run_one(name: str, left: float) -> dict:
    cli.log(f"[{name}] ... ({left:.0f} s of the budget left)")
    t = time.monotonic()
    out = run_in_child(name, left)
    section = out.get("result") or {"error": out["error"], "traceback": out.get("traceback", "")}
    section["seconds"] = time.monotonic() - t
    return section

  def on_done(name: str, section: dict) -> None:
    report["sections"][name] = section
    if "error" in section:
      report["failed"].append(name)
    elif "skipped" in section:
      report["skipped"].append(name)
    report["seconds"] = time.monotonic() - start
    write_report(FLAGS.out, report)
    print(summary_line(name, section) + (f" ({section['seconds']:.0f} s)" if "seconds" in section else ""),
          flush=True)

  minimum = SMOKE_MIN_SECONDS if FLAGS.smoke else MIN_SECONDS
  run_sections(FLAGS.sections, deadline, run_one, minimum, on_done)
  print(markdown(report))
  if report["failed"]:
    print(f"gpu_check: failed sections: {', '.join(report['failed'])} (details in {FLAGS.out}/report.json)",
          file=sys.stderr)
    return 1
  return 0


# ---------------------------------------------------------------- the sections (child processes)

def device_info() -> dict:
  import jax
  from xy_jax.plan.timing import device_peak
  device = jax.devices()[0]
  stats = device.memory_stats() or {}
  return {"platform": device.platform, "kind": device.device_kind, "peak": device_peak(device.device_kind),
          "memory_limit": stats.get("bytes_limit"),
          "description": f"{device.device_kind} ({device.platform}, {jax.device_count()} device(s))"}


def _packed_segments(rows: int, length: int, rng) -> np.ndarray:
  """Each row: 3-5 documents of random lengths, then padding (0)."""
  out = np.zeros((rows, length), np.int32)
  for r in range(rows):
    cuts = np.sort(rng.choice(np.arange(1, length - length // 8), size=rng.integers(2, 5), replace=False))
    bounds = [0, *cuts, length - length // 8]
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]), 1):
      out[r, a:b] = s
  return out


def _time_ms(fn, *args, repeats: int = 5) -> float:
  import jax
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(fn(*args))
  return (time.perf_counter() - start) / repeats * 1e3


def check_attention(p, device):
  """Kernels against the float32 reference (segment + causal mask, dense softmax), forward and
  gradients; `cudnn_dense` is the public API's dense-mask route, timed beside the packed one."""
  import jax
  import jax.numpy as jnp
  from xy_jax.models.attention import attention_mask, dot_product_attention, reference_attention
  on_gpu = device["platform"] == "gpu"
  impls = ["xla", "cudnn", "cudnn_dense"] if on_gpu else ["xla"]
  dtype = jnp.bfloat16 if on_gpu else jnp.float32
  heads, hd = p["attn_heads"]
  rng = np.random.default_rng(0)
  out = {"dtype": jnp.dtype(dtype).name, "kernels": impls, "rows": {}}
  failures = []
  for length in p["attn_rows"]:
    seg = jnp.asarray(_packed_segments(2, length, rng))
    q, k, v, ct = (jnp.asarray(rng.normal(size=(2, length, heads, hd)), dtype) for _ in range(4))
    valid = (seg > 0)[..., None, None]

    def loss(q, k, v, impl, seg):
      if impl == "reference":
        o = reference_attention(q, k, v, seg, seg)
      elif impl == "cudnn_dense":
        o = jax.nn.dot_product_attention(q, k, v, mask=attention_mask(seg, seg), implementation="cudnn")
      else:
        o = dot_product_attention(q, k, v, q_segment_ids=seg, kv_segment_ids=seg, impl=impl)
      o = o.astype(jnp.float32)
      return jnp.sum(o * ct.astype(jnp.float32) * (seg > 0)[..., None, None]), o

    run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True), static_argnums=3)
    (_, ref), ref_grads = run(q, k, v, "reference", seg)
    row = {}
    for impl in impls:
      (_, o), grads = run(q, k, v, impl, seg)
      fwd = float(jnp.max(jnp.abs(jnp.where(valid, o - ref, 0))))
      grad = max(float(jnp.max(jnp.abs(g.astype(jnp.float32) - r.astype(jnp.float32))))
                 for g, r in zip(grads, ref_grads))
      # A kernel ignoring the segments would agree with itself run on a single segment.
      (_, o_one), _ = run(q, k, v, impl, jnp.ones_like(seg))
      ignores = float(jnp.max(jnp.abs(jnp.where(valid, o - o_one, 0)))) < 1e-3
      tol = 2e-2 if dtype == jnp.bfloat16 else 1e-4
      row[impl] = {"forward_max_abs_diff_vs_f32": fwd, "grad_max_abs_diff_vs_f32": grad,
                   "ignores_segments": ignores, "ok": fwd < tol and not ignores,
                   "ms": _time_ms(run, q, k, v, impl, seg)}
      if not row[impl]["ok"]:
        failures.append(f"{impl} at {length}: forward diff {fwd:.3g}, ignores segments {ignores}")
    if "cudnn" in row:
      row["cudnn_vs_xla_forward"] = abs(row["cudnn"]["forward_max_abs_diff_vs_f32"]
                                        - row["xla"]["forward_max_abs_diff_vs_f32"])
    out["rows"][str(length)] = row
  if failures:
    raise AssertionError("attention kernels disagree with the reference or ignore segments: " + "; ".join(failures))
  return out


class TrainBench:
  """One set of parameters for the section; per row shape, the cheapest remat policy whose
  compiled program fits the device's memory (no run that waits for an out-of-memory)."""
  POLICIES = ("none", "dots_with_no_batch_dims", "full")

  def __init__(self, p, device):
    from flax import nnx
    from xy_jax.models.factory import init_model
    from xy_jax.models.llama import CausalLM
    from xy_jax.sharding import LogicalSharding
    self.p, self.device = p, device
    self.cfg = self.config("none")
    self.params = nnx.to_pure_dict(nnx.state(init_model(CausalLM, self.cfg, LogicalSharding(), seed=0)))

  def config(self, policy: str):
    from xy_jax.models.presets import get_preset
    return get_preset(self.p["preset"], dtype=self.p["dtype"], remat_policy=policy)

  def fitting(self, shape):
    """(policy, compiled, optimizer, {policy: planned GiB}) of the first policy that fits."""
    from xy_jax.plan.timing import compile_train_step, peak_bytes
    limit = self.device["memory_limit"]
    planned = {}
    for policy in self.POLICIES:
      compiled, tx = compile_train_step(self.config(policy), shape)
      need = peak_bytes(compiled)
      planned[policy] = None if need is None else need / 2**30
      if limit is None or need is None or need <= MEMORY_HEADROOM * limit:
        return policy, compiled, tx, planned
    raise RuntimeError(f"no remat policy fits {shape} in {limit / 2**30:.1f} GiB: planned GiB {planned}")

  def tokens_per_s(self, rows: int, length: int) -> dict:
    from xy_jax.plan.timing import time_train_step
    tokens = np.random.default_rng(0).integers(4, self.cfg.vocab_size, (rows, length)).astype(np.int32)
    policy, compiled, tx, planned = self.fitting(tokens.shape)
    tps = time_train_step(compiled, tx, self.params, tokens, self.p["steps"])
    peak = self.device["peak"]
    mfu = tps * self.cfg.flops_per_token(length) / peak[0] if peak else None
    return {"rows": rows, "tokens_per_s": tps, "remat_policy": policy, "planned_gib": planned, "mfu": mfu}


def check_train(p, device):
  bench = TrainBench(p, device)
  r = bench.tokens_per_s(p["train_rows"], p["seq"])
  return {"preset": p["preset"], "params_M": bench.cfg.param_count() / 1e6, "seq": p["seq"], "rows": r["rows"],
          "dtype": p["dtype"], "remat_policy": r["remat_policy"], "planned_gib": r["planned_gib"],
          "memory_limit_gib": None if device["memory_limit"] is None else device["memory_limit"] / 2**30,
          "tokens_per_s": r["tokens_per_s"], "mfu": r["mfu"], "goal_mfu": GOALS["mfu"],
          "goal_met": None if r["mfu"] is None else r["mfu"] >= GOALS["mfu"]}


def check_buckets(p, device):
  bench = TrainBench(p, device)
  table = {str(length): bench.tokens_per_s(max(p["bucket_tokens"] // length, 1), length)
           for length in p["buckets"]}
  first, last = table[str(p["buckets"][0])], table[str(p["buckets"][-1])]
  ratio = last["tokens_per_s"] / first["tokens_per_s"]
  return {"tokens_per_step": p["bucket_tokens"], "table": table, "longest_over_shortest": ratio,
          "goal": GOALS["bucket_ratio"], "goal_met": ratio >= GOALS["bucket_ratio"]}


def check_bench(p, device, seconds: float):
  """tools/bench.py as a user runs it; its printed figures, parsed."""
  dtype = "bfloat16" if p["dtype"] == "bfloat16" else "float32"
  cmd = [sys.executable, os.path.join(ROOT, "tools", "bench.py"), f"--preset={p['preset']}", f"--dtype={dtype}",
         *p["bench"]]
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=seconds, env=_child_env())
  if proc.returncode:
    raise RuntimeError(f"tools/bench.py failed: {proc.stderr[-500:]}")
  lines = [line for line in proc.stdout.splitlines() if line.strip()]
  ratios = {line.split(":")[0]: float(line.split(":")[1]) for line in lines if line.endswith(tuple("0123456789"))
            and line.split(":")[0] in ("train ratio", "generate ratio")}
  return {"command": " ".join(cmd[1:]), "output": lines, **{k.replace(" ", "_"): v for k, v in ratios.items()}}


def check_decode(p, device):
  import jax
  from flax import nnx
  from xy_jax.convert.hf import export_hf
  from xy_jax.data.tokenizer import DEFAULT_ASSET
  from xy_jax.models.factory import init_model
  from xy_jax.models.llama import CausalLM
  from xy_jax.models.presets import get_preset
  from xy_jax.peers import torch_peer
  from xy_jax.sharding import LogicalSharding
  from xy_jax.plan.timing import generate_tokens_per_s
  cfg = get_preset(p["preset"], dtype=p["dtype"], param_dtype=p["dtype"], remat_policy="none")
  model = init_model(CausalLM, cfg, LogicalSharding(), seed=0)
  weight_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(nnx.state(model)))
  rng = np.random.default_rng(0)
  rows = {}
  peak = device["peak"]
  with tempfile.TemporaryDirectory() as d:
    export_hf(model, cfg, d + "/hf", dtype=p["dtype"], tokenizer_file=DEFAULT_ASSET, log=lambda *_: None)
    hf_model = torch_peer.load_causal_lm(d + "/hf", bf16=p["dtype"] == "bfloat16")
    for b in p["decode_batches"]:
      prompts = rng.integers(4, cfg.vocab_size, (b, p["prompt_len"])).tolist()
      ours = generate_tokens_per_s(model, prompts, p["new_tokens"])
      theirs = torch_peer.generate_tokens_per_s(hf_model, prompts, p["new_tokens"])
      # One decode step reads every weight and, on average, half of the final KV cache.
      cache = (cfg.num_hidden_layers * 2 * b * (p["prompt_len"] + p["new_tokens"] / 2)
               * cfg.num_key_value_heads * cfg.resolved_head_dim * np.dtype(p["dtype"]).itemsize)
      rows[str(b)] = {"ours_tokens_per_s": ours, "transformers_tokens_per_s": theirs, "ratio": ours / theirs,
                      "hbm_fraction": (weight_bytes + cache) * (ours / b) / peak[1] if peak else None}
  return {"preset": p["preset"], "prompt_len": p["prompt_len"], "new_tokens": p["new_tokens"], "batches": rows}


def child(name: str, result_file: str) -> None:
  """Runs one section; its result (or error) goes to `result_file` for the parent."""
  out = {"device": device_info()}
  p = profile()
  runs = {"attention": lambda: check_attention(p, out["device"]), "train": lambda: check_train(p, out["device"]),
          "buckets": lambda: check_buckets(p, out["device"]), "decode": lambda: check_decode(p, out["device"]),
          "bench": lambda: check_bench(p, out["device"], FLAGS.budget_s), "device": lambda: {}}
  try:
    out["result"] = runs[name]()
  except Exception as e:  # the parent reports it; the other sections still run
    out.update(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
  tmp = result_file + ".tmp"
  with open(tmp, "w") as f:
    json.dump(out, f)
  os.replace(tmp, result_file)


def markdown(report: dict) -> str:
  lines = [f"# GPU check: {report['device']}", "", f"{report['date']}, commit {report['commit']}, "
           f"{'smoke (tiny, same code paths)' if report['smoke'] else 'full'}; {report['seconds']:.0f} s of a "
           f"{report['budget_s']:.0f} s budget", ""]
  for name, section in report["sections"].items():
    lines.append(f"## {name}")
    if "error" in section:
      lines += ["", f"FAILED: {section['error']}", ""]
      continue
    if "skipped" in section:
      lines += ["", f"skipped: {section['skipped']}", ""]
      continue
    if name == "attention":
      lines += ["", "| row length | kernel | forward max abs diff vs f32 | grad max abs diff | ignores segments | "
                "fwd+bwd ms | ok |", "| --- | --- | --- | --- | --- | --- | --- |"]
      for length, row in section["rows"].items():
        for impl in section["kernels"]:
          r = row[impl]
          lines.append(f"| {length} | {impl} | {r['forward_max_abs_diff_vs_f32']:.3g} | "
                       f"{r['grad_max_abs_diff_vs_f32']:.3g} | {r['ignores_segments']} | {r['ms']:.2f} | {r['ok']} |")
    elif name == "train":
      mfu = "n/a" if section["mfu"] is None else f"{100 * section['mfu']:.1f}%"
      lines += ["", f"{section['preset']} ({section['params_M']:.0f}M), seq {section['seq']} x {section['rows']} rows, "
                f"{section['dtype']}, remat {section['remat_policy']} (planned GiB per policy tried: "
                f"{section['planned_gib']}): {section['tokens_per_s']:,.0f} tokens/s, MFU {mfu} "
                f"(goal {100 * section['goal_mfu']:.0f}%)"]
    elif name == "buckets":
      lines += ["", f"{section['tokens_per_step']} tokens per step", "",
                "| row length | rows | tokens/s | MFU | remat |", "| --- | --- | --- | --- | --- |"]
      for length, r in section["table"].items():
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        lines.append(f"| {length} | {r['rows']} | {r['tokens_per_s']:,.0f} | {mfu} | {r['remat_policy']} |")
      lines += ["", f"longest / shortest: {section['longest_over_shortest']:.3f} (goal {section['goal']})"]
    elif name == "bench":
      lines += ["", "```", f"python {section['command']}", *section["output"][-6:], "```"]
    elif name == "decode":
      lines += ["", "| batch | ours tokens/s | transformers tokens/s | ratio | share of HBM bandwidth |",
                "| --- | --- | --- | --- | --- |"]
      for b, r in section["batches"].items():
        share = "n/a" if r["hbm_fraction"] is None else f"{100 * r['hbm_fraction']:.1f}%"
        lines.append(f"| {b} | {r['ours_tokens_per_s']:,.0f} | {r['transformers_tokens_per_s']:,.0f} | "
                     f"{r['ratio']:.2f} | {share} |")
    lines.append("")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  if FLAGS.child_section:
    child(FLAGS.child_section, FLAGS.child_result)
    return
  code = orchestrate(Deadline(FLAGS.budget_s))
  if code:
    raise SystemExit(code)


if __name__ == "__main__":
  cli.run(main)
