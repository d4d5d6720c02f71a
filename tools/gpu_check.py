"""Every GPU check in one command (`make gpu-check`), under 20 minutes on one H100 or H200:

  python tools/gpu_check.py --out gpu_check_out            # on the GPU host
  python tools/gpu_check.py --out /tmp/gc --smoke          # the same code paths, tiny, on CPU

  a. attention: cudnn vs xla on packed rows with segment ids (forward and gradients, bf16, rows of
     2k and 8k) against a float32 reference; fails loudly when a kernel ignores the segments
  b. train step: tokens/s and MFU of the ~1.3B preset (gpu_1b3) at 2048, bf16, with the first remat
     policy that fits (none, dots_with_no_batch_dims, full)
  c. buckets: 2k/4k/8k/16k rows at constant tokens per step, tokens/s each and 16k/2k
  d. tools/bench.py beside transformers + torch (bf16, sdpa) on the same GPU
  e. decode tokens/s at batch 1, 8 and 64, ours vs transformers `generate`, and the share of HBM
     bandwidth our decode step uses (weights + KV cache read once per token)

Writes DIR/report.json and DIR/report.md; exits 1 when a check fails (a kernel ignoring segments,
a section that crashed). Goals (MFU >= 55%, 16k/2k >= 0.9, cudnn equal to xla) are reported as
met or not; they do not fail the run.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
from absl import flags

from xy_jax import cli

flags.DEFINE_string("out", None, "directory for report.json and report.md", required=True)
flags.DEFINE_bool("smoke", False, "tiny sizes on any device (CPU): the same code paths, for tests")
flags.DEFINE_list("sections", ["attention", "train", "buckets", "bench", "decode"], "which checks to run")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FULL = dict(attn_rows=(2048, 8192), attn_heads=(16, 128), preset="gpu_1b3", seq=2048, train_rows=8,
            buckets=(2048, 4096, 8192, 16384), bucket_tokens=65536, bench=("--batch=4", "--seq=2048",
            "--steps=5", "--new_tokens=128"), decode_batches=(1, 8, 64), prompt_len=128, new_tokens=128,
            dtype="bfloat16", steps=5)
SMOKE = dict(attn_rows=(128, 256), attn_heads=(4, 32), preset="tiny", seq=128, train_rows=4,
             buckets=(64, 128, 256), bucket_tokens=1024, bench=("--batch=2", "--seq=64", "--steps=1",
             "--new_tokens=8"), decode_batches=(1, 4), prompt_len=16, new_tokens=8, dtype="float32", steps=2)
GOALS = {"mfu": 0.55, "bucket_ratio": 0.9}


def _packed_segments(rows: int, length: int, rng) -> np.ndarray:
  """Each row: 3-5 documents of random lengths, then padding (0)."""
  out = np.zeros((rows, length), np.int32)
  for r in range(rows):
    cuts = np.sort(rng.choice(np.arange(1, length - length // 8), size=rng.integers(2, 5), replace=False))
    bounds = [0, *cuts, length - length // 8]
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]), 1):
      out[r, a:b] = s
  return out


def check_attention(p, platform):
  """Kernels against a float32 reference (segment + causal mask, dense softmax), forward and grads."""
  import jax
  import jax.numpy as jnp
  from xy_jax.models.attention import attention_mask, dot_product_attention
  impls = ["xla", "cudnn"] if platform == "gpu" else ["xla"]
  dtype = jnp.bfloat16 if platform == "gpu" else jnp.float32
  heads, hd = p["attn_heads"]
  rng = np.random.default_rng(0)
  out = {"dtype": jnp.dtype(dtype).name, "kernels": impls, "rows": {}}
  failures = []
  for length in p["attn_rows"]:
    seg = jnp.asarray(_packed_segments(2, length, rng))
    q, k, v, ct = (jnp.asarray(rng.normal(size=(2, length, heads, hd)), dtype) for _ in range(4))

    def loss(q, k, v, impl, seg=seg):
      if impl == "reference":
        mask = attention_mask(seg, seg)
        s = jnp.einsum("btnh,bsnh->bnts", q.astype(jnp.float32), k.astype(jnp.float32)) * hd ** -0.5
        w = jax.nn.softmax(jnp.where(mask, s, -1e30), axis=-1) * jnp.any(mask, -1, keepdims=True)
        o = jnp.einsum("bnts,bsnh->btnh", w, v.astype(jnp.float32))
      else:
        o = dot_product_attention(q, k, v, q_segment_ids=seg, kv_segment_ids=seg, impl=impl).astype(jnp.float32)
      return jnp.sum(o * ct.astype(jnp.float32) * (seg > 0)[..., None, None]), o

    run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True), static_argnums=3)
    (_, ref), ref_grads = run(q, k, v, "reference")
    row = {}
    for impl in impls:
      (_, o), grads = run(q, k, v, impl)
      valid = (seg > 0)[..., None, None]
      fwd = float(jnp.max(jnp.abs(jnp.where(valid, o - ref, 0))))
      grad = max(float(jnp.max(jnp.abs(g.astype(jnp.float32) - r.astype(jnp.float32))))
                 for g, r in zip(grads, ref_grads))
      # Ignoring the segments would make this kernel agree with one run on a single segment.
      (_, o_one), _ = jax.jit(jax.value_and_grad(lambda q, k, v: loss(q, k, v, impl, jnp.ones_like(seg)),
                                                 argnums=(0, 1, 2), has_aux=True))(q, k, v)
      ignores = float(jnp.max(jnp.abs(jnp.where(valid, o - o_one, 0)))) < 1e-3
      tol = 2e-2 if dtype == jnp.bfloat16 else 1e-4
      row[impl] = {"forward_max_abs_diff_vs_f32": fwd, "grad_max_abs_diff_vs_f32": grad,
                   "ignores_segments": ignores, "ok": fwd < tol and not ignores}
      if not row[impl]["ok"]:
        failures.append(f"{impl} at {length}: forward diff {fwd:.3g}, ignores segments {ignores}")
    if "cudnn" in row:
      row["cudnn_vs_xla_forward"] = abs(row["cudnn"]["forward_max_abs_diff_vs_f32"]
                                        - row["xla"]["forward_max_abs_diff_vs_f32"])
    out["rows"][str(length)] = row
  out["failures"] = failures
  if failures:
    raise AssertionError("attention kernels disagree with the reference or ignore segments: " + "; ".join(failures))
  return out


def _fitting_train(cfg_for, tokens, steps):
  """(policy, tokens/s, policies that ran out of memory) with the first remat policy that fits."""
  from xy_jax.speed import train_tokens_per_s
  tried = {}
  for policy in ("none", "dots_with_no_batch_dims", "full"):
    try:
      _, tps = train_tokens_per_s(cfg_for(policy), tokens, steps)
      return policy, tps, tried
    except Exception as e:  # out of memory surfaces as several error types
      if "RESOURCE_EXHAUSTED" not in str(e) and "out of memory" not in str(e).lower():
        raise
      tried[policy] = "out of memory"
  raise RuntimeError(f"no remat policy fits: {tried}")


def _preset_config(p):
  """remat policy -> the section's model config."""
  from xy_jax.models.presets import get_preset
  return lambda policy: get_preset(p["preset"], dtype=p["dtype"], remat_policy=policy)


def check_train(p, peak):
  cfg_for = _preset_config(p)
  cfg = cfg_for("none")
  tokens = np.random.default_rng(0).integers(4, cfg.vocab_size, (p["train_rows"], p["seq"])).astype(np.int32)
  policy, tps, tried = _fitting_train(cfg_for, tokens, p["steps"])
  mfu = tps * cfg.flops_per_token(p["seq"]) / peak[0] if peak else None
  return {"preset": p["preset"], "params_M": cfg.param_count() / 1e6, "seq": p["seq"], "rows": p["train_rows"],
          "dtype": p["dtype"], "remat_policy": policy, "oom_policies": tried, "tokens_per_s": tps,
          "mfu": mfu, "goal_mfu": GOALS["mfu"], "goal_met": None if mfu is None else mfu >= GOALS["mfu"]}


def check_buckets(p, peak):
  cfg_for = _preset_config(p)
  rng = np.random.default_rng(0)
  table = {}
  for length in p["buckets"]:
    rows = max(p["bucket_tokens"] // length, 1)
    tokens = rng.integers(4, cfg_for("none").vocab_size, (rows, length)).astype(np.int32)
    policy, tps, _ = _fitting_train(cfg_for, tokens, p["steps"])
    mfu = tps * cfg_for(policy).flops_per_token(length) / peak[0] if peak else None
    table[str(length)] = {"rows": rows, "tokens_per_s": tps, "remat_policy": policy, "mfu": mfu}
  first, last = table[str(p["buckets"][0])], table[str(p["buckets"][-1])]
  ratio = last["tokens_per_s"] / first["tokens_per_s"]
  return {"tokens_per_step": p["bucket_tokens"], "table": table, "longest_over_shortest": ratio,
          "goal": GOALS["bucket_ratio"], "goal_met": ratio >= GOALS["bucket_ratio"]}


def check_bench(p):
  """tools/bench.py as a user runs it; its printed figures, parsed."""
  dtype = "bfloat16" if p["dtype"] == "bfloat16" else "float32"
  cmd = [sys.executable, os.path.join(ROOT, "tools", "bench.py"), f"--preset={p['preset']}", f"--dtype={dtype}",
         *p["bench"]]
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200)
  if proc.returncode:
    raise RuntimeError(f"tools/bench.py failed: {proc.stderr[-500:]}")
  lines = [line for line in proc.stdout.splitlines() if line.strip()]
  ratios = {line.split(":")[0]: float(line.split(":")[1]) for line in lines if line.endswith(tuple("0123456789"))
            and line.split(":")[0] in ("train ratio", "generate ratio")}
  return {"command": " ".join(cmd[1:]), "output": lines, **{k.replace(" ", "_"): v for k, v in ratios.items()}}


def check_decode(p, peak):
  import jax
  from flax import nnx
  from xy_jax.convert.hf import export_hf
  from xy_jax.data.tokenizer import DEFAULT_ASSET
  from xy_jax.models.factory import init_model
  from xy_jax.models.llama import CausalLM
  from xy_jax.sharding import LogicalSharding
  from xy_jax.speed import generate_tokens_per_s
  import torch_peer  # beside this script
  from xy_jax.models.presets import get_preset
  cfg = get_preset(p["preset"], dtype=p["dtype"], param_dtype=p["dtype"], remat_policy="none")
  model = init_model(CausalLM, cfg, LogicalSharding(), seed=0)
  weight_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(nnx.state(model)))
  rng = np.random.default_rng(0)
  rows = {}
  with tempfile.TemporaryDirectory() as d:
    export_hf(model, cfg, d + "/hf", dtype=p["dtype"], tokenizer_file=DEFAULT_ASSET, log=lambda *_: None)
    for b in p["decode_batches"]:
      prompts = rng.integers(4, cfg.vocab_size, (b, p["prompt_len"])).tolist()
      ours = generate_tokens_per_s(model, prompts, p["new_tokens"])
      theirs = torch_peer.generate_tokens_per_s(d + "/hf", prompts, p["new_tokens"], bf16=p["dtype"] == "bfloat16")
      # One decode step reads every weight and, on average, half of the final KV cache.
      cache = (cfg.num_hidden_layers * 2 * b * (p["prompt_len"] + p["new_tokens"] / 2)
               * cfg.num_key_value_heads * cfg.resolved_head_dim * np.dtype(p["dtype"]).itemsize)
      steps_per_s = ours / b
      rows[str(b)] = {"ours_tokens_per_s": ours, "transformers_tokens_per_s": theirs, "ratio": ours / theirs,
                      "hbm_fraction": (weight_bytes + cache) * steps_per_s / peak[1] if peak else None}
  return {"preset": p["preset"], "prompt_len": p["prompt_len"], "new_tokens": p["new_tokens"], "batches": rows}


def markdown(report: dict) -> str:
  lines = [f"# GPU check: {report['device']}", "", f"{report['date']}, commit {report['commit']}, "
           f"{'smoke (tiny, same code paths)' if report['smoke'] else 'full'}; {report['seconds']:.0f} s", ""]
  for name, section in report["sections"].items():
    lines.append(f"## {name}")
    if "error" in section:
      lines += ["", f"FAILED: {section['error']}", ""]
      continue
    if name == "attention":
      lines += ["", "| row length | kernel | forward max abs diff vs f32 | grad max abs diff | ignores segments | ok |",
                "| --- | --- | --- | --- | --- | --- |"]
      for length, row in section["rows"].items():
        for impl in section["kernels"]:
          r = row[impl]
          lines.append(f"| {length} | {impl} | {r['forward_max_abs_diff_vs_f32']:.3g} | "
                       f"{r['grad_max_abs_diff_vs_f32']:.3g} | {r['ignores_segments']} | {r['ok']} |")
    elif name == "train":
      mfu = "n/a" if section["mfu"] is None else f"{100 * section['mfu']:.1f}%"
      lines += ["", f"{section['preset']} ({section['params_M']:.0f}M), seq {section['seq']} x {section['rows']} rows, "
                f"{section['dtype']}, remat {section['remat_policy']}: {section['tokens_per_s']:,.0f} tokens/s, "
                f"MFU {mfu} (goal {100 * section['goal_mfu']:.0f}%)"]
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
  import jax
  from xy_jax.speed import device_peak
  p = SMOKE if FLAGS.smoke else FULL
  device = jax.devices()[0]
  platform = device.platform
  if platform != "gpu" and not FLAGS.smoke:
    raise SystemExit(f"gpu_check: the default device is {platform}, not a GPU; use --smoke for the tiny CPU run")
  peak = device_peak(device.device_kind)
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=ROOT).stdout.strip() or "unknown"
  report = {"device": f"{device.device_kind} ({platform}, {jax.device_count()} device(s))",
            "date": time.strftime("%Y-%m-%d"), "commit": commit, "smoke": FLAGS.smoke,
            "peak_bf16_flops": peak[0] if peak else None, "peak_hbm_bytes_per_s": peak[1] if peak else None,
            "sections": {}}
  runs = {"attention": lambda: check_attention(p, platform), "train": lambda: check_train(p, peak),
          "buckets": lambda: check_buckets(p, peak), "bench": lambda: check_bench(p),
          "decode": lambda: check_decode(p, peak)}
  start = time.time()
  failed = []
  for name in FLAGS.sections:
    if name not in runs:
      raise SystemExit(f"--sections: {name!r} is not one of {', '.join(runs)}")
    cli.log(f"[{name}] ...")
    t = time.time()
    try:
      report["sections"][name] = runs[name]()
    except Exception as e:  # one section's failure is reported; the others still run
      report["sections"][name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
      failed.append(name)
    cli.log(f"[{name}] {time.time() - t:.0f} s" + (" FAILED" if name in failed else ""))
  report["seconds"] = time.time() - start
  report["failed"] = failed
  os.makedirs(FLAGS.out, exist_ok=True)
  with open(os.path.join(FLAGS.out, "report.json"), "w") as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(FLAGS.out, "report.md"), "w") as f:
    f.write(markdown(report))
  print(markdown(report))
  if failed:
    raise SystemExit(f"gpu_check: failed sections: {', '.join(failed)} (details in {FLAGS.out}/report.json)")


if __name__ == "__main__":
  cli.run(main)
