"""Near-dedup head to head on one Chinese corpus with planted near copies: a MinHash signature step
(ours, or datatrove's own with jieba words) followed by datatrove's bucket and cluster stages, run
in this process on one core. Recall per edit rate, false positives and docs/s of the signature step."""

from __future__ import annotations

import dataclasses
import os
import struct
import time

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster

from xy_jax.data.clean.synthetic import edit_zh_chars, texts


@dataclasses.dataclass
class PlantedCorpus:
  docs: list[str]
  pairs: dict[float, list[tuple[int, int]]]  # edit rate -> (original index, copy index)


def planted_chinese(seed: int, n_docs: int, pairs_per_rate: int, rates=(0.02, 0.05)) -> PlantedCorpus:
  """`n_docs` Chinese originals and, for each rate, near copies of `pairs_per_rate` distinct originals."""
  rng = np.random.default_rng(seed)
  docs, _ = texts(rng, n_docs, True)
  sources = rng.choice(n_docs, size=pairs_per_rate * len(rates), replace=False).tolist()
  pairs = {}
  for k, rate in enumerate(rates):
    pairs[rate] = []
    for i in sources[k * pairs_per_rate:(k + 1) * pairs_per_rate]:
      docs.append(edit_zh_chars(rng, docs[i], rate))
      pairs[rate].append((i, len(docs) - 1))
  return PlantedCorpus(docs, pairs)


@dataclasses.dataclass
class DedupResult:
  signature_seconds: float  # process CPU time of the signature step
  total_seconds: float      # process CPU time of signatures, buckets and clusters
  docs: int
  recall: dict[float, float]
  found: dict[float, int]
  false_positive_docs: int  # documents clustered with a document that is not their planted twin

  @property
  def docs_per_s(self) -> float:
    return self.docs / self.signature_seconds


def _clusters(folder: str) -> dict[int, int]:
  path = os.path.join(folder, "000000.clusters")
  if not os.path.exists(path):
    return {}
  with open(path, "rb") as f:
    raw = f.read()
  return dict(struct.iter_unpack("<2I", raw))


def run_dedup(signature_step, corpus: PlantedCorpus, workdir: str, config: MinhashConfig) -> DedupResult:
  """Runs `signature_step` (writing to workdir/sigs) and datatrove's stages 2 and 3 on the corpus."""
  docs = [Document(text=t, id=str(i)) for i, t in enumerate(corpus.docs)]
  signature_step.get_shingles(corpus.docs[0])  # loads a word tokenizer's dictionary before the clock starts
  start = time.process_time()
  signature_step.run(iter(docs), 0, 1)
  signature_seconds = time.process_time() - start
  for bucket in range(config.num_buckets):
    MinhashDedupBuckets(os.path.join(workdir, "sigs"), os.path.join(workdir, "buckets"), config=config).run(
        None, bucket, config.num_buckets)
  MinhashDedupCluster(os.path.join(workdir, "buckets"), os.path.join(workdir, "clusters"), config=config,
                      save_cluster_id=True).run(None, 0, 1)
  total_seconds = time.process_time() - start
  cluster = _clusters(os.path.join(workdir, "clusters"))
  found, recall, twin = {}, {}, {}
  for rate, pairs in corpus.pairs.items():
    found[rate] = sum(1 for a, b in pairs if a in cluster and cluster.get(a) == cluster.get(b))
    recall[rate] = found[rate] / len(pairs) if pairs else float("nan")
    for a, b in pairs:
      twin[a], twin[b] = b, a
  members: dict[int, list[int]] = {}
  for doc, cid in cluster.items():
    members.setdefault(cid, []).append(doc)
  false_positive = sum(1 for group in members.values() for d in group
                       if any(other != d and twin.get(d) != other for other in group))
  return DedupResult(signature_seconds, total_seconds, len(docs), recall, found, false_positive)
