"""The records of a cleaning run's output shards (DIR/*.jsonl.gz), in shard order."""

import gzip
import json
import os


def read_shards(folder) -> list[dict]:
  out = []
  for name in sorted(os.listdir(folder)):
    if name.endswith(".jsonl.gz"):
      with gzip.open(os.path.join(folder, name), "rt", encoding="utf-8") as f:
        out += [json.loads(line) for line in f]
  return out
