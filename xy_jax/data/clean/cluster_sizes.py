"""Tallies the duplicate cluster size of every kept document: the report's histograms of cluster
sizes. Near duplicates: datatrove's MinhashDedupFilter puts the size in
doc.metadata["minhash_cluster_size"]; exact ones: ExactDedupFilter puts the number of removed
copies in doc.metadata["duplicate_count"] (size = count + 1)."""

from __future__ import annotations

import collections
import json
import os

from datatrove.pipeline.base import PipelineStep


class ClusterSizes(PipelineStep):
  type = "📊 - STATS"
  name = "cluster sizes"

  def __init__(self, report_dir: str, report_key: str = "cluster_sizes", metadata_key: str = "minhash_cluster_size",
               add: int = 0):
    super().__init__()
    self.report_dir, self.report_key, self.metadata_key, self.add = report_dir, report_key, metadata_key, add

  def run(self, data, rank: int = 0, world_size: int = 1):
    sizes = collections.Counter()
    for doc in data:
      sizes[int(doc.metadata.get(self.metadata_key, 1 - self.add)) + self.add] += 1
      yield doc
    folder = os.path.join(self.report_dir, self.report_key)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{rank:05d}.json")
    with open(path + ".tmp", "w") as f:
      json.dump({str(k): v for k, v in sorted(sizes.items())}, f)
    os.replace(path + ".tmp", path)
