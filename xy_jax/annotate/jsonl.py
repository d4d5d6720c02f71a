"""JSONL input with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator


def records(path: str) -> Iterator[tuple[str, dict]]:
  """(`file:line`, object) for every non-blank line; anything else stops with the line named."""
  with open(path, "rb") as f:
    for number, raw in enumerate(f, 1):
      where = f"{path}:{number}"
      try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
      except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not UTF-8 (byte {e.start + 1} of the line); convert the file, "
                         "e.g. iconv -f GBK -t UTF-8") from None
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{where}: malformed JSON ({e.msg})") from None
      if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object")
      yield where, record
