"""Tallies the near-duplicate cluster size of every kept document (datatrove's MinhashDedupFilter
puts it in doc.metadata["minhash_cluster_size"]): the report's histogram of cluster sizes."""

from __future__ import annotations

import collections
import json
import os

from datatrove.pipeline.base import PipelineStep


class ClusterSizes(PipelineStep):
  type = "📊 - STATS"
  name = "cluster sizes"

  def __init__(self, report_dir: str):
    super().__init__()
    self.report_dir = report_dir

  def run(self, data, rank: int = 0, world_size: int = 1):
    sizes = collections.Counter()
    for doc in data:
      sizes[int(doc.metadata.get("minhash_cluster_size", 1))] += 1
      yield doc
    folder = os.path.join(self.report_dir, "cluster_sizes")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{rank:05d}.json")
    with open(path + ".tmp", "w") as f:
      json.dump({str(k): v for k, v in sorted(sizes.items())}, f)
    os.replace(path + ".tmp", path)
