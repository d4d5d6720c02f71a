"""One curation run end to end: inputs -> stages -> DIR/*.jsonl.gz (renamed into place) + report.json."""

from __future__ import annotations

import glob
import json
import os

from xy_jax.data.clean.io import SOURCE_SUFFIXES
from xy_jax.data.clean.pipeline import STEP_ORDER, CleanSettings, build_stages, run_stages
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


def clean(patterns: list[str], out: str, settings: CleanSettings, executor: str = "local") -> dict:
  """Runs (or, when finished before, only re-reads) the curation of `patterns` into `out`."""
  files, empty = input_files(patterns)
  if not files:
    raise ConfigError(f"--input: {'; '.join(empty)}")
  os.makedirs(out, exist_ok=True)
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
  return report
