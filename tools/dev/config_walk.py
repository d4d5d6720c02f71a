"""Architecture figures for a tree of xy_jax, counted by a program so that they can be counted again.

  python tools/dev/config_walk.py [--tree DIR] [--flavours sft,sft_lora] [--sizes] [--duplicates]

`--tree DIR` (default: the checkout this file is in) is the tree measured: its xy_jax package is
imported (DIR goes first on PYTHONPATH of every child process; the child checks `xy_jax.__file__`)
and its configs/ and data/ are used. Prints a human summary on stderr and one JSON line on stdout.

The config walk (default; `--no-walk` skips it)
-----------------------------------------------
Each flavour is a tiny training run started in a fresh process the way `python -m xy_jax.train`
starts it (absl flags through `ml_collections.config_flags` with lock_config=True, xy_jax.cli's flag
parsers, `Interrupts()`, `distributed.initialize(mode="off")`, `import xy_jax.stages`, then
`xy_jax.train.loop.run(cfg, workdir, log=cli.log, interrupts=...)`), JAX_PLATFORMS=cpu, one CPU
device, with `--config.train.steps=1` (the whole run once: setup, init or restore, one train step
with its tracing and compilation, the last step's eval, metrics and checkpoint save, closing) and
`--config.data.prepared_dir` and the workdir in a temporary folder.

  flavours:  sft       configs/sft_tiny.py, random init (the command in its docstring without
                       init_from_checkpoint: the stage needs no earlier run)
             pretrain  configs/pretrain_tiny.py
             sft_lora  configs/sft_tiny.py --config.lora.rank=8
                       --config.init_from_checkpoint=<a pretrain_tiny checkpoint of 1 step>
                       (that checkpoint comes from an unprofiled `python -m xy_jax.train` run)

The training data are tokenized before the walk by the documented program (`python -m
xy_jax.main.prepare_data`, or `python tools/prepare_data.py` in trees without xy_jax/main/, with
`--config ... --config.data.prepared_dir=...`, unprofiled), so the walk is a
user's second run, not the one-off tokenization (`--cold-data`: the walk includes
`data.auto_prepare`'s tokenization).

Recording: `sys.setprofile` is installed just before `run` is called and removed when it returns, so
it sees exactly the calls from entering `run` until it returns, in the main thread only (the data
prefetch and async-checkpoint threads are not seen). Every "call" event (Python functions; the
resumption of a generator also is one) whose code object's file is under the imported xy_jax/ is
recorded as (file relative to xy_jax/, function name, config?). "config?" is true when one of the
function's parameters (positional, keyword-only, and the members of *args / the values of **kwargs),
read from `frame.f_locals` at the call event, is a config object: an `ml_collections.ConfigDict`
(the run's config or any part of it, e.g. `cfg.model`, `cfg.data`; a FrozenConfigDict is one too) or
an instance of a class defined in xy_jax whose name ends in "Config" (the typed `ModelConfig` made
from `cfg.model`, `SamplingConfig`, ...). A method of such a class counts (its `self` is one).

Counting, done twice: over all recorded calls ("all calls"), and over the config-receiving calls
only ("config walk"; the other calls are dropped first, so calls of one file separated only by
calls that do not receive the config are one stop):
  stop        a maximal run of consecutive recorded calls in the same file
  stops       the number of stops; files: the number of distinct files among them
  back-climb  a stop whose file's layer is higher than the previous stop's file's layer
  entries     per file, the number of stops in it (the top 10 are printed)
A file's layer is its first path component below xy_jax/ (a top-level module by its name without
.py), in this order from bottom to top:
  errors, io_utils, distributed, orbax_errors, sharding, models, data, checkpoint, convert, quant,
  infer, eval, loading, weights, plan* (plan, plan_rollout, plan_serving, ...), speed, train, rl,
  stages, config, cli, main
Any other name is put at the level of `train` and printed under "unknown layers".

`--sizes`: .py files and their lines (newline count, like `wc -l`) per top-level unit of xy_jax/ (each
subpackage; the top-level modules together as "(top)"), and under tools/ and tests/. The files are
those git lists in the tree (tracked, plus untracked ones it does not ignore); elsewhere every .py.

`--duplicates`: runs `duplicates --repo TREE --most 200 --seconds 120`; reports its first line (the
total), the number of listed rows with neither side under configs/, and the first 10 such rows. Only
the listed rows (at most 200) can be counted: if the tool says `(+N more pairs)`, that is reported.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TREE = os.path.dirname(os.path.dirname(HERE))

LAYERS = ["errors", "io_utils", "distributed", "orbax_errors", "sharding", "models", "data",
          "checkpoint", "convert", "quant", "infer", "eval", "loading", "weights", "plan*", "speed",
          "train", "rl", "stages", "config", "cli", "main"]
LEVEL = {name: i for i, name in enumerate(LAYERS)}

TIMEOUT = 900  # seconds for each child process (a tiny run takes well under a minute)

FLAVOURS = {
    "sft": ("configs/sft_tiny.py", []),
    "pretrain": ("configs/pretrain_tiny.py", []),
    "sft_lora": ("configs/sft_tiny.py", ["lora.rank=8", "init_from_checkpoint={pretrain_ckpt}"]),
}


def layer(rel: str) -> str:
  first = rel.split("/")[0]
  name = first[:-3] if first.endswith(".py") else first
  if name.startswith("plan"):
    return "plan*"
  return name


def level(rel: str) -> int:
  return LEVEL.get(layer(rel), LEVEL["train"])


def count(files: list[str]) -> dict:
  """Stops, distinct files, back-climbs and per-file entries of a sequence of call files."""
  stops: list[str] = []
  for f in files:
    if not stops or stops[-1] != f:
      stops.append(f)
  climbs = sum(1 for a, b in zip(stops, stops[1:]) if level(b) > level(a))
  entries = collections.Counter(stops)
  layer_entries = collections.Counter(layer(f) for f in stops)
  return {"calls": len(files), "stops": len(stops), "files": len(entries), "back_climbs": climbs,
          "top_files": entries.most_common(10), "layers": dict(layer_entries.most_common()),
          "unknown_layers": sorted({layer(f) for f in entries if layer(f) not in LEVEL})}


# --- the walk, in a child process -------------------------------------------------------------------

def walk_child(tree: str, config: str, overrides: list[str], workdir: str, out: str) -> None:
  os.chdir(tree)
  import xy_jax
  root = os.path.dirname(os.path.abspath(xy_jax.__file__))
  if root != os.path.join(os.path.realpath(tree), "xy_jax") and root != os.path.join(tree, "xy_jax"):
    sys.exit(f"config_walk: imported {xy_jax.__file__}, not the tree's {tree}/xy_jax (PYTHONPATH?)")
  from absl import flags
  from ml_collections import ConfigDict, config_flags

  from xy_jax import cli, distributed  # cli registers the dict flag parsers, as in __main__
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config", flag_values=fv, lock_config=True)
  sys.argv = ["xy_jax.train", f"--config={config}", *[f"--config.{o}" for o in overrides]]
  fv(sys.argv)  # config_flags reads the overrides from sys.argv
  cfg = fv.config
  from xy_jax.train.interrupts import Interrupts
  interrupts = Interrupts()
  distributed.initialize(None, None, None, "off", None)
  import xy_jax.stages  # noqa: F401
  from xy_jax.train.loop import run

  prefix = root + os.sep
  where: dict = {}  # code object -> file relative to xy_jax/, or None
  calls: list[tuple[str, str, bool]] = []

  def is_config(v) -> bool:
    if isinstance(v, ConfigDict):
      return True
    t = type(v)
    return t.__name__.endswith("Config") and (t.__module__ or "").startswith("xy_jax")

  def receives_config(frame, code) -> bool:
    n = code.co_argcount + code.co_kwonlyargcount
    star = code.co_flags & 0x04  # CO_VARARGS
    if star:
      n += 1
    if code.co_flags & 0x08:  # CO_VARKEYWORDS
      n += 1
    names = code.co_varnames[:n]
    if not names:
      return False
    loc = frame.f_locals
    for i, name in enumerate(names):
      v = loc.get(name)
      if is_config(v):
        return True
      if star and i == code.co_argcount + code.co_kwonlyargcount and isinstance(v, tuple):
        if any(is_config(x) for x in v):
          return True
      if code.co_flags & 0x08 and i == n - 1 and isinstance(v, dict):
        if any(is_config(x) for x in v.values()):
          return True
    return False

  def profile(frame, event, arg):
    if event != "call":
      return
    code = frame.f_code
    try:
      rel = where[code]
    except KeyError:
      fn = os.path.abspath(code.co_filename)
      rel = where[code] = fn[len(prefix):] if fn.startswith(prefix) else None
    if rel is not None:
      calls.append((rel, code.co_name, receives_config(frame, code)))

  t0 = time.time()
  sys.setprofile(profile)
  try:
    result = run(cfg, workdir, log=cli.log, interrupts=interrupts)
  finally:
    sys.setprofile(None)
  with open(out, "w") as f:
    json.dump({"calls": calls, "seconds": time.time() - t0, "xy_jax": root,
               "steps_done": result.steps_done}, f)


# --- the parent ------------------------------------------------------------------------------------

def child_env(tree: str) -> dict:
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1",
         "PYTHONPATH": os.pathsep.join([tree] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
  env.pop("XLA_FLAGS", None)
  return env


def sh(cmd: list[str], tree: str, what: str) -> None:
  t0 = time.time()
  try:
    proc = subprocess.run(cmd, cwd=tree, env=child_env(tree), capture_output=True, text=True,
                          timeout=TIMEOUT)
  except subprocess.TimeoutExpired as e:
    sys.exit(f"config_walk: {what} still running after {TIMEOUT}s:\n{(e.stderr or b'')[-3000:]!r}")
  if proc.returncode:
    sys.exit(f"config_walk: {what} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  print(f"  {what}: {time.time() - t0:.0f}s", file=sys.stderr)


def prepare(tree: str, config: str, prepared: str) -> None:
  # The program itself where the package has it: tools/prepare_data.py as a runpy wrapper re-runs the
  # program in every spawned tokenizer worker (multiprocessing's main-module rule) and hangs.
  if os.path.exists(os.path.join(tree, "xy_jax", "main", "prepare_data.py")):
    cmd = [sys.executable, "-m", "xy_jax.main.prepare_data"]
  else:
    cmd = [sys.executable, "tools/prepare_data.py"]
  sh(cmd + [f"--config={config}", f"--config.data.prepared_dir={prepared}"], tree,
     f"prepare {config}")


def walk(tree: str, flavours: list[str], cold: bool, tmp: str) -> dict:
  results = {}
  pretrain_ckpt = None
  if "sft_lora" in flavours:
    wd = os.path.join(tmp, "base_pretrain")
    sh([sys.executable, "-m", "xy_jax.train", "--config=configs/pretrain_tiny.py", f"--workdir={wd}",
        "--config.train.steps=1", "--config.optim.warmup_steps=0",
        f"--config.data.prepared_dir={tmp}/data/pretrain_tiny"], tree,
       "pretrain_tiny checkpoint for sft_lora (unprofiled)")
    pretrain_ckpt = os.path.join(wd, "checkpoints")
  for name in flavours:
    config, extra = FLAVOURS[name]
    prepared = os.path.join(tmp, "data", f"{name}_{os.path.basename(config)[:-3]}")
    if not cold:
      prepare(tree, config, prepared)
    overrides = ["train.steps=1", "optim.warmup_steps=0", f"data.prepared_dir={prepared}"] + [
        o.format(pretrain_ckpt=pretrain_ckpt) for o in extra]
    out = os.path.join(tmp, f"{name}.json")
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", "--tree", tree, "--config", config,
         "--workdir", os.path.join(tmp, f"walk_{name}"), "--out", out, "--"] + overrides,
        cwd=tree, env=child_env(tree), capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode:
      sys.exit(f"config_walk: walk {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(out) as f:
      rec = json.load(f)
    print(f"  walk {name}: {time.time() - t0:.0f}s ({rec['seconds']:.0f}s in run), xy_jax from "
          f"{rec['xy_jax']}", file=sys.stderr)
    calls = rec["calls"]
    results[name] = {
        "config": config, "overrides": overrides, "steps_done": rec["steps_done"],
        "all_calls": count([c[0] for c in calls]),
        "config_walk": count([c[0] for c in calls if c[2]]),
    }
  return results


def listed_files(tree: str) -> list[str]:
  try:
    out = subprocess.run(["git", "-C", tree, "ls-files", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True, check=True).stdout
    files = [f for f in out.splitlines() if os.path.isfile(os.path.join(tree, f))]
  except (OSError, subprocess.CalledProcessError):
    files = []
    for d, dirs, names in os.walk(tree):
      dirs[:] = [x for x in dirs if not x.startswith(".") and x != "__pycache__"]
      files += [os.path.relpath(os.path.join(d, n), tree) for n in names]
  return sorted(set(files))


def sizes(tree: str) -> dict:
  units: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
  for f in listed_files(tree):
    if not f.endswith(".py"):
      continue
    parts = f.split("/")
    if parts[0] == "xy_jax":
      unit = "xy_jax/" + (parts[1] if len(parts) > 2 else "(top)")
    elif parts[0] in ("tools", "tests"):
      unit = parts[0] + "/"
    else:
      continue
    with open(os.path.join(tree, f), "rb") as fh:
      n = fh.read().count(b"\n")
    units[unit][0] += 1
    units[unit][1] += n
  pkg = {k: v for k, v in units.items() if k.startswith("xy_jax/")}
  out = {k: {"files": v[0], "lines": v[1]} for k, v in sorted(units.items())}
  out["xy_jax (all)"] = {"files": sum(v[0] for v in pkg.values()), "lines": sum(v[1] for v in pkg.values())}
  return out


ROW = re.compile(r"^D\d+\s+(\S+?):\d+-\d+\s+~\s+(\S+?):\d+-\d+")


def duplicates(tree: str, most: int = 200, seconds: int = 120) -> dict:
  exe = shutil.which("duplicates")
  if exe is None:
    return {"error": "no duplicates command"}
  out = subprocess.run([exe, "--repo", tree, "--most", str(most), "--seconds", str(seconds)],
                       capture_output=True, text=True).stdout.splitlines()
  rows = [(line, ROW.match(line)) for line in out]
  rows = [(line, m) for line, m in rows if m]
  outside = [line for line, m in rows
             if not m.group(1).startswith("configs/") and not m.group(2).startswith("configs/")]
  tail = [line for line in out if line.startswith(("(+", "left out:", "incomplete:"))]
  return {"first_line": out[0] if out else "", "rows_listed": len(rows),
          "rows_outside_configs": len(outside), "top_outside_configs": outside[:10], "notes": tail}


def summary(tree: str, head: str, report: dict) -> str:
  lines = [f"tree {tree} at {head}"]
  for name, r in report.get("walk", {}).items():
    lines.append(f"walk {name}: {r['config']} {' '.join('--config.' + o for o in r['overrides'])}")
    for kind in ("all_calls", "config_walk"):
      c = r[kind]
      lines.append(f"  {kind:11s}: {c['calls']} calls, {c['stops']} stops in {c['files']} files, "
                   f"{c['back_climbs']} back-climbs")
      lines.append("    entries: " + ", ".join(f"{f} {n}" for f, n in c["top_files"]))
      lines.append("    per layer: " + ", ".join(f"{k} {v}" for k, v in c["layers"].items()))
      if c["unknown_layers"]:
        lines.append("    unknown layers (at train's level): " + ", ".join(c["unknown_layers"]))
  if "sizes" in report:
    lines.append("sizes (.py files / lines):")
    for unit, v in report["sizes"].items():
      lines.append(f"  {unit:22s} {v['files']:4d} {v['lines']:7d}")
  if "duplicates" in report:
    d = report["duplicates"]
    lines.append(f"duplicates: {d.get('first_line')}; listed rows {d.get('rows_listed')}, outside "
                 f"configs/ {d.get('rows_outside_configs')}")
    lines += ["  " + row for row in d.get("top_outside_configs", [])]
    lines += ["  " + n for n in d.get("notes", [])]
  return "\n".join(lines)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--tree", default=DEFAULT_TREE)
  ap.add_argument("--flavours", default="sft,sft_lora", help=f"comma-separated: {', '.join(FLAVOURS)}")
  ap.add_argument("--no-walk", action="store_true")
  ap.add_argument("--cold-data", action="store_true", help="the walk includes data.auto_prepare")
  ap.add_argument("--sizes", action="store_true")
  ap.add_argument("--duplicates", action="store_true")
  ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
  # the child process
  ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  ap.add_argument("--config", help=argparse.SUPPRESS)
  ap.add_argument("--workdir", help=argparse.SUPPRESS)
  ap.add_argument("--out", help=argparse.SUPPRESS)
  ap.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
  a = ap.parse_args()
  tree = os.path.abspath(a.tree)
  if a.child:
    walk_child(tree, a.config, a.overrides, a.workdir, a.out)
    return
  head = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip() or "?"
  report: dict = {"tree": tree, "head": head}
  tmp = tempfile.mkdtemp(prefix="config_walk_")
  try:
    if not a.no_walk:
      flavours = [f for f in a.flavours.split(",") if f]
      unknown = [f for f in flavours if f not in FLAVOURS]
      if unknown:
        sys.exit(f"config_walk: unknown flavour(s) {unknown}; known: {list(FLAVOURS)}")
      report["walk"] = walk(tree, flavours, a.cold_data, tmp)
    if a.sizes:
      report["sizes"] = sizes(tree)
    if a.duplicates:
      report["duplicates"] = duplicates(tree)
  finally:
    if a.keep:
      print(f"kept {tmp}", file=sys.stderr)
    else:
      shutil.rmtree(tmp, ignore_errors=True)
  print(summary(tree, head, report), file=sys.stderr)
  print(json.dumps(report))


if __name__ == "__main__":
  main()
