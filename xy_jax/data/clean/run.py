"""One curation run end to end: inputs -> stages -> DIR/*.jsonl.gz (renamed into place) + report.json."""

from __future__ import annotations

import glob
import json
import os

from xy_jax.data.clean.io import SOURCE_SUFFIXES
from xy_jax.data.clean.pipeline import STEP_ORDER, CleanSettings, build_stages, run_stages
from xy_jax.data.clean.report_plot import plot_report
from xy_jax.data.clean.report import merge_report
from xy_jax.errors import ConfigError


def input_files(patterns: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
  """[(source, file)] for paths, globs and directories, and one line per pattern naming nothing."""
  files, empty = [], []
  for pattern in patterns:
    if os.path.isdir(pattern):
      found = sorted(os.path.join(r, n) for r, _, ns in os.walk(pattern) for n in ns if n.endswith(SOURCE_SUFFIXES))
    elif any(c in pattern for c in "*?["):
      found = sorted(glob.glob(pattern, recursive=True))
    else:
      found = [pattern] if os.path.exists(pattern) else []  # an unreadable one is the reader's to report
    if not found:
      empty.append(f"{pattern}: {'no input file (empty source)' if os.path.exists(pattern) or any(c in pattern for c in '*?[') else 'no such file or directory'}")
    files += [(pattern, f) for f in found]
  return files, empty


def _fingerprint(files: list[tuple[str, str]], settings: CleanSettings) -> dict:
  inputs = {}
  for _, path in files:
    try:
      st = os.stat(path)
      inputs[path] = [st.st_size, st.st_mtime_ns]
    except OSError:
      inputs[path] = None  # unreadable: the reader reports it
  return {"inputs": inputs, "settings": repr(settings)}


def check_same_inputs(out: str, files: list[tuple[str, str]], settings: CleanSettings) -> None:
  """datatrove's completion markers would let a re-run into `out` skip every finished task, even
  when its inputs changed since: the inputs (path, size, mtime) and settings of the run that made
  `out` are kept in out/.work/inputs.json, and a run with others is refused, naming what changed."""
  path = os.path.join(out, ".work", "inputs.json")
  now = _fingerprint(files, settings)
  if os.path.exists(path):
    with open(path) as f:
      before = json.load(f)
    changed = [p for p in sorted(set(before["inputs"]) | set(now["inputs"]))
               if before["inputs"].get(p, "absent") != now["inputs"].get(p, "absent")]
    if changed:
      what = "new" if changed[0] not in before["inputs"] else "gone" if changed[0] not in now["inputs"] else "changed"
      raise ConfigError(f"{changed[0]}: input {what} since the run in {out} (size or mtime; {len(changed)} file(s) "
                        f"differ): remove {out} or choose another --out")
    if before["settings"] != now["settings"]:
      raise ConfigError(f"{out} was made with other clean settings ({before['settings']}): remove it or choose "
                        "another --out")
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(now, f, indent=1)
  os.replace(path + ".tmp", path)


def clean(patterns: list[str], out: str, settings: CleanSettings, executor: str = "local") -> dict:
  """Runs (or, when finished before, only re-reads) the curation of `patterns` into `out`."""
  files, empty = input_files(patterns)
  if not files:
    raise ConfigError(f"--input: {'; '.join(empty)}")
  os.makedirs(out, exist_ok=True)
  check_same_inputs(out, files, settings)
  stage_seconds = run_stages(build_stages(files, out, settings), out, executor, settings.workers)
  final_tmp = os.path.join(out, ".work", "final")
  for name in sorted(os.listdir(final_tmp)):
    if name.endswith(".jsonl.gz"):
      os.replace(os.path.join(final_tmp, name), os.path.join(out, name))
  report = merge_report(out, STEP_ORDER)
  report["bad_input"] = {"empty sources": empty}
  report["stage_wall_seconds"] = stage_seconds
  report["settings"] = {"n_grams": settings.n_grams, "bands": settings.bands, "rows": settings.rows,
                        "jaccard_threshold": round((1 / settings.bands) ** (1 / settings.rows), 3),
                        "executor": executor}
  tmp = os.path.join(out, "report.json.tmp")
  with open(tmp, "w") as f:
    json.dump(report, f, ensure_ascii=False, indent=1)
  os.replace(tmp, os.path.join(out, "report.json"))
  plot_report(report, os.path.join(out, "report.png"))
  return report
