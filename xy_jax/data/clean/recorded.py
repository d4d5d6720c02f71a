"""A curation run that records the raw files it reads (DIR/raw_inputs.json, see data/provenance.py)
and starts over when they change.

datatrove's completion markers make a re-run of a finished run do nothing, whatever the inputs now
hold; with the record, a re-run after raw text was edited, added or removed (or the settings
changed) clears what the run wrote (DIR/.work, its shards, report.json and .png) and cleans again, and
prepare_data refuses the old shards naming the raw file until then. Unchanged inputs keep the
markers: a finished run is not redone and a killed one resumes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

from xy_jax.data.clean.io import SOURCE_SUFFIXES
from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.run import clean, input_files
from xy_jax.data.provenance import raw_change, read_cleaning_record, write_cleaning_record

_SHARD = re.compile(r"\d{5}\.jsonl\.gz")


def _clear_run(out: str) -> None:
  shutil.rmtree(os.path.join(out, ".work"), ignore_errors=True)
  for name in os.listdir(out):
    if _SHARD.fullmatch(name) or name in ("report.json", "report.png"):
      os.remove(os.path.join(out, name))


def clean_with_record(patterns: list[str], out: str, settings: CleanSettings, executor: str = "local",
                      log=lambda line: None) -> dict:
  """run.clean, after recording the raw inputs; a run of other inputs or settings in `out` is
  cleared first (and said so through `log`)."""
  files = [f for _, f in input_files(patterns)[0]]
  shaping = {k: v for k, v in dataclasses.asdict(settings).items() if k != "workers"}
  shaping["tasks"] = settings.tasks or max(1, min(len(files), settings.workers))  # the shard layout
  shaping = json.loads(json.dumps(shaping))  # as the record stores it
  old = read_cleaning_record(out)
  if old is not None:
    change = (raw_change(old, out) or
              (old.get("patterns") != [os.path.abspath(p) for p in patterns] and "other --input patterns") or
              (old.get("settings") != shaping and "other settings"))
  else:
    change = os.path.isdir(os.path.join(out, ".work")) and "a run without a record of its raw inputs"
  if change:
    log(f"{change}; cleaning again")
    _clear_run(out)
  if files:
    os.makedirs(out, exist_ok=True)
    write_cleaning_record(out, patterns, files, SOURCE_SUFFIXES, shaping)
  return clean(patterns, out, settings, executor)
