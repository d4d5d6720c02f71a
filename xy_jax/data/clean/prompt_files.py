"""Prompt dedup over JSONL files (tools/dedup_prompts.py): the records kept, each line as it was
read (every field kept), and a report of the clusters that lost records.

Records are compared as training reads them: {"prompt"[, "response"]} on the prompt and response,
{"conversations": [...]} on every turn but the system message. A line that is no such record is
kept as it is and counted (the reader that trains on it reports it); a line that is not UTF-8 is
skipped and counted.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Sequence

from xy_jax.data.clean.prompts import PromptDedupSettings, dialogue_text, find_duplicates
from xy_jax.data.sft import BadRecord, parse_turns
from xy_jax.data.sources import SkipReport, read_lines

EXAMPLE_CHARS = 200


def record_text(record) -> str | None:
  """What dedup compares for one JSONL record (None: not a prompt or conversation record)."""
  if not isinstance(record, dict):
    return None
  if "conversations" in record:
    try:
      return dialogue_text(parse_turns(record["conversations"]))
    except BadRecord:
      return None
  if isinstance(record.get("prompt"), str):
    response = record.get("response")
    return record["prompt"] + (f"\n{response}" if isinstance(response, str) else "")
  return None


def dedup_files(files: Sequence[str], out: str, settings: PromptDedupSettings) -> dict:
  """Writes the kept lines of `files` to `out` (atomically) and returns the report."""
  skipped = SkipReport()
  lines, wheres, texts, compared = [], [], [], []  # compared: indices of lines with a record text
  not_compared = collections.Counter()
  for path in files:
    for where, line in read_lines(path, skipped):
      if not line.strip():
        continue
      try:
        text = record_text(json.loads(line))
      except json.JSONDecodeError:
        text = None
      if text is None:
        not_compared["malformed JSON or no prompt/conversations: kept as is"] += 1
      else:
        compared.append(len(lines))
        texts.append(text)
      lines.append(line if line.endswith("\n") else line + "\n")
      wheres.append(where)
  dups = find_duplicates(texts, settings)
  dropped = {compared[d.index] for d in dups}
  tmp = f"{out}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.writelines(line for i, line in enumerate(lines) if i not in dropped)
  os.replace(tmp, out)

  clusters = collections.defaultdict(list)
  for d in dups:
    clusters[d.kept].append({"where": wheres[compared[d.index]], "kind": d.kind, "similarity": d.similarity,
                             "text": texts[d.index][:EXAMPLE_CHARS]})
  return {
      "inputs": list(files), "output": out, "records_in": len(lines), "records_out": len(lines) - len(dropped),
      "removed": dict(collections.Counter(d.kind for d in dups)), "clusters_with_removals": len(clusters),
      "not_compared": dict(not_compared), "skipped": dict(skipped.counts), "skipped_examples": skipped.examples,
      "settings": dataclasses.asdict(settings),
      "clusters": [{"kept": {"where": wheres[compared[k]], "text": texts[k][:EXAMPLE_CHARS]}, "removed": removed}
                   for k, removed in sorted(clusters.items())],
  }
