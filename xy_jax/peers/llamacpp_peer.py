"""CPU serving through llama.cpp, beside our generator: our HF export -> llama.cpp's own converter
(`convert_hf_to_gguf.py`) -> GGUF in float32, bfloat16 and q8_0 -> `llama-bench` decode tokens/s
at batch 1. The llama.cpp checkout and build are the user's (`tools/bench.py --llamacpp DIR`)."""

import glob
import json
import os
import subprocess
import sys

OUTTYPES = ("f32", "bf16", "q8_0")


def _find(root: str, pattern: str, what: str) -> str:
  hits = sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
  if not hits:
    raise SystemExit(f"--llamacpp={root}: no {pattern} under it ({what})")
  return hits[0]


def decode_tokens_per_s(llamacpp: str, hf_dir: str, work: str, new_tokens: int, threads: int) -> dict[str, float]:
  """GGUF type -> llama-bench text-generation tokens/s (batch 1, `new_tokens` tokens)."""
  converter = _find(llamacpp, "convert_hf_to_gguf.py", "llama.cpp's converter, in its source tree")
  bench = _find(llamacpp, "llama-bench", "build llama.cpp first: cmake -B build && cmake --build build")
  out = {}
  for outtype in OUTTYPES:
    gguf = os.path.join(work, f"model-{outtype}.gguf")
    conv = subprocess.run([sys.executable, converter, hf_dir, "--outfile", gguf, "--outtype", outtype],
                          capture_output=True, text=True)
    if conv.returncode:
      raise SystemExit(f"{converter} failed on {hf_dir} ({outtype}): {conv.stderr.strip().splitlines()[-1:]}")
    run = subprocess.run([bench, "-m", gguf, "-p", "0", "-n", str(new_tokens), "-t", str(threads), "-o", "json"],
                         capture_output=True, text=True)
    if run.returncode:
      raise SystemExit(f"{bench} failed on {gguf}: {run.stderr.strip().splitlines()[-1:]}")
    rows = [r for r in json.loads(run.stdout) if r.get("n_gen")]
    out[outtype] = float(rows[0]["avg_ts"])
  return out
