"""JSONL input with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator


def records(path: str) -> Iterator[tuple[str, dict]]:
  """(`file:line`, object) for every non-blank line; anything else stops with the line named."""
  with open(path, encoding="utf-8-sig") as f:
    for number, line in enumerate(f, 1):
      where = f"{path}:{number}"
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{where}: malformed JSON ({e.msg})") from None
      if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object")
      yield where, record
