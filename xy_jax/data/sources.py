"""Text sources: plain text, JSONL ("text" field), globs and directories, each with a mixture weight.

Reading never dies on one bad record: malformed JSON, invalid UTF-8, empty documents and
unreadable files are counted and reported as `file:line: reason`.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
from collections.abc import Iterator, Sequence

from xy_jax.data.provenance import CLEANING_RECORD
from xy_jax.errors import ConfigError

TEXT_SUFFIXES = (".txt", ".jsonl", ".json", ".txt.gz", ".jsonl.gz")  # .gz: e.g. tools/clean_data.py's shards


@dataclasses.dataclass
class SkipReport:
  """Counts and examples of what was skipped, by reason."""

  counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  examples: list[str] = dataclasses.field(default_factory=list)
  max_examples: int = 20

  def skip(self, where: str, reason: str) -> None:
    self.counts[reason] += 1
    if len(self.examples) < self.max_examples:
      self.examples.append(f"{where}: {reason}")

  def merge(self, other: "SkipReport") -> None:
    self.counts.update(other.counts)
    room = self.max_examples - len(self.examples)
    self.examples.extend(other.examples[:max(room, 0)])

  @property
  def total(self) -> int:
    return sum(self.counts.values())

  def summary(self) -> str:
    if not self.total:
      return "skipped 0 records"
    parts = ", ".join(f"{n} {reason}" for reason, n in self.counts.most_common())
    return f"skipped {self.total} records ({parts})"


def expand_paths(patterns: Sequence[str] | str, field: str) -> list[str]:
  """Files named by paths, globs and directories (recursively: .txt, .jsonl, .json, and gzipped
  .txt.gz / .jsonl.gz; hidden folders are skipped, and a tools/clean_data.py output folder gives
  its shards only, not its report, record or work files)."""
  if isinstance(patterns, str):
    patterns = [patterns]
  files: list[str] = []
  for pattern in patterns:
    if os.path.isdir(pattern):
      for root, dirs, names in os.walk(pattern):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        cleaned = CLEANING_RECORD in names
        files += [os.path.join(root, n) for n in sorted(names)
                  if n.endswith(".jsonl.gz" if cleaned else TEXT_SUFFIXES)]
    elif any(ch in pattern for ch in "*?["):
      matches = sorted(glob.glob(pattern, recursive=True))
      if not matches:
        raise ConfigError(f"{field}={pattern!r}: the glob matches no file")
      files += matches
    elif os.path.isfile(pattern):
      files.append(pattern)
    else:
      raise ConfigError(f"{field}={pattern!r}: no such file or directory")
  return sorted(dict.fromkeys(files))


def read_lines(path: str, report: SkipReport) -> Iterator[tuple[str, str]]:
  """(`file:line`, text) for every line, streamed; an unreadable file or line and invalid UTF-8
  are reported and skipped; a UTF-8 byte-order mark at the start of the file is dropped."""
  try:
    f = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
  except OSError as e:
    report.skip(path, f"unreadable file ({e.strerror})")
    return
  with f:
    lineno = 0
    while True:
      try:
        raw = f.readline()
      except (OSError, EOFError) as e:  # EOFError, BadGzipFile: a truncated or damaged .gz
        report.skip(f"{path}:{lineno + 1}", f"read error ({getattr(e, 'strerror', None) or e})")
        return
      if not raw:
        return
      lineno += 1
      try:
        text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is no text
      except UnicodeDecodeError:
        report.skip(f"{path}:{lineno}", "invalid UTF-8")
        continue
      yield f"{path}:{lineno}", text


def read_jsonl(path: str, report: SkipReport) -> Iterator[tuple[str, object]]:
  """(`file:line`, record) for every non-blank line; malformed JSON is reported and skipped."""
  for where, line in read_lines(path, report):
    if not line.strip():
      continue
    try:
      yield where, json.loads(line)
    except json.JSONDecodeError:
      report.skip(where, "malformed JSON")


def read_documents(path: str, report: SkipReport, text_field: str = "text") -> Iterator[str]:
  """Documents of one file, streamed line by line (files larger than RAM are fine)."""
  return (text for _, text in located_documents(path, report, text_field))


def located_documents(path: str, report: SkipReport,
                      text_field: str = "text") -> Iterator[tuple[str, str]]:
  """(`file:line`, document) for a .txt (one document per line) or .jsonl (`text_field`) file."""
  if path.endswith((".jsonl", ".json", ".jsonl.gz")):
    for where, record in read_jsonl(path, report):
      text = record.get(text_field) if isinstance(record, dict) else None
      if not isinstance(text, str):
        report.skip(where, f"no \"{text_field}\" string field")
      elif not text.strip():
        report.skip(where, "empty document")
      else:
        yield where, text
    return
  for where, line in read_lines(path, report):
    text = line.rstrip("\r\n")
    if text.strip():  # blank lines separate nothing in one-document-per-line text
      yield where, text
