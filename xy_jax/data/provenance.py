"""Which files a dataset was made from: (path, size, modification time) fingerprints, and the record
a cleaning run (tools/clean_data.py) leaves beside its shards, so that preparing the shards of
edited raw text is refused with one line naming the raw file.

    DIR/raw_inputs.json   {"patterns": [...], "suffixes": [...], "inputs": [[path, size, mtime_ns]],
                           "settings": {...}}: the --input patterns (absolute), the raw files they
                           named when the run started, and the settings that shaped the shards
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence

from xy_jax.errors import ConfigError

CLEANING_RECORD = "raw_inputs.json"


def fingerprint(files: Sequence[str]) -> list[list]:
  """[absolute path, size, modification time in ns] per input file."""
  out = []
  for f in files:
    st = os.stat(f)
    out.append([os.path.abspath(f), st.st_size, st.st_mtime_ns])
  return out


def write_cleaning_record(out: str, patterns: Sequence[str], files: Sequence[str], suffixes: Sequence[str],
                          settings: dict) -> dict:
  record = {"patterns": [os.path.abspath(p) for p in patterns], "suffixes": list(suffixes),
            "inputs": fingerprint(files), "settings": settings}
  path = os.path.join(out, CLEANING_RECORD)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(record, f, ensure_ascii=False, indent=1)
  os.replace(path + ".tmp", path)
  return record


def read_cleaning_record(directory: str) -> dict | None:
  try:
    with open(os.path.join(directory, CLEANING_RECORD), encoding="utf-8") as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) and isinstance(record.get("inputs"), list) else None


def _named_now(record: dict) -> list[str]:
  """The files the record's patterns name today (directories walked for its suffixes)."""
  suffixes = tuple(record.get("suffixes") or ())
  found = []
  for pattern in record.get("patterns", ()):
    if os.path.isdir(pattern):
      found += [os.path.join(r, n) for r, _, ns in os.walk(pattern) for n in ns if n.endswith(suffixes)]
    elif any(c in pattern for c in "*?["):
      found += glob.glob(pattern, recursive=True)
  return sorted(found)


def raw_change(record: dict, directory: str) -> str | None:
  """How the raw files of a cleaning record differ from today's (None: they do not)."""
  stored = {p: (size, mtime) for p, size, mtime in record["inputs"]}
  for path, (size, mtime) in sorted(stored.items()):
    try:
      st = os.stat(path)
    except OSError:
      return f"{path}, a raw input of the cleaned shards in {directory}, is gone"
    if (st.st_size, st.st_mtime_ns) != (size, mtime):
      return f"{path} changed since it was cleaned into {directory} (size or modification time)"
  for path in _named_now(record):
    if os.path.abspath(path) not in stored:
      return f"{path} is a new raw input since {directory} was cleaned"
  return None


def cleaning_stale_reason(files: Sequence[str]) -> str | None:
  """Why shards of a cleaning run among `files` no longer match their raw text (None: they do, or
  none of the files is such a shard)."""
  for directory in sorted({os.path.dirname(os.path.abspath(f)) for f in files}):
    record = read_cleaning_record(directory)
    change = record and raw_change(record, directory)
    if change:
      return f"{change}; run tools/clean_data.py on it again"
  return None


def refuse_stale_cleaning(files: Sequence[str], field: str) -> None:
  reason = cleaning_stale_reason(files)
  if reason:
    raise ConfigError(f"{field}: {reason}")
