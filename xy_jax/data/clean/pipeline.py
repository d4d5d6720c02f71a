"""The curation run: read -> normalise -> language -> quality -> PII -> exact dedup -> MinHash
near-dedup -> DIR/*.jsonl.gz, as datatrove executors (local or Ray) chained by `depends`.

Stages (tasks): curate (T) | exact signatures (T) | exact find (1) | MinHash signatures (T) |
MinHash buckets (bands) | MinHash clusters (1) | final (T). Every stage keeps datatrove's
completion markers under DIR/.work/logs, so re-running a finished run does nothing.
"""

from __future__ import annotations

import dataclasses
import os
import time

from datatrove.pipeline.dedup.exact_dedup import (ExactDedupConfig, ExactDedupFilter, ExactDedupSignature,
                                                  ExactFindDedups)
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter)

from xy_jax.data.clean.cluster_sizes import ClusterSizes
from xy_jax.data.clean.io import ShardReader, ShardWriter, SourceReader
from xy_jax.data.clean.language import LanguageTag, check_language_model
from xy_jax.data.clean.measured import Measured
from xy_jax.data.clean.normalize import Normalize, traditional_to_simplified
from xy_jax.data.clean.pii import MaskPII
from xy_jax.data.clean.quality import DEFAULT_THRESHOLDS, QualityFilter, Thresholds
from xy_jax.data.clean.shingles import MixedScriptMinhashSignature
from xy_jax.errors import ConfigError

STEP_ORDER = ("read", "normalize", "quality", "pii", "exact_dedup", "minhash_signatures", "near_dedup")


@dataclasses.dataclass
class CleanSettings:
  n_grams: int = 5
  bands: int = 14
  rows: int = 8
  num_perm: int = 112  # MinHash permutations: bands x rows must equal it
  zh_share: float = 0.3
  tasks: int = 0  # 0: one per input file, at most `workers`
  workers: int = 2
  thresholds: dict[str, Thresholds] = dataclasses.field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
  text_key: str = "text"
  t2s: bool = False  # traditional -> simplified Chinese (OpenCC) before normalising
  # gzip level of the output shards: 3 compresses 2.5x faster than 9 (0.05 ms a document less)
  # for files about 7% larger; the working shards use 1
  gzip_level: int = 3
  # a fastText language-ID model (lid.176.bin, GlotLID's model.bin) instead of the script share:
  # documents get its language's code ("zh", "en", "fr", "deu", ...); None: script share, no model
  language_model: str | None = None
  # below this probability of its top language a document is "other" (dropped unless
  # clean.thresholds names "other"): 0.5 asks the top language to outweigh all the others together,
  # a little under datatrove's 0.65 because mixed Chinese-English finance text splits its mass
  language_min_score: float = 0.5

  def check(self) -> None:
    if self.bands * self.rows != self.num_perm:
      raise ConfigError(f"clean.bands x clean.rows = {self.bands} x {self.rows} = {self.bands * self.rows} "
                        f"does not fit clean.num_perm={self.num_perm} permutations")
    if min(self.bands, self.rows, self.n_grams) < 1:
      raise ConfigError("clean.bands, clean.rows and clean.n_grams must be at least 1")
    if not (isinstance(self.gzip_level, int) and 1 <= self.gzip_level <= 9):
      raise ConfigError(f"clean.gzip_level must be an integer from 1 to 9, not {self.gzip_level!r}")
    if (isinstance(self.language_min_score, bool) or not isinstance(self.language_min_score, (int, float))
        or not 0 <= self.language_min_score <= 1):
      raise ConfigError("clean.language_min_score must be a probability in [0, 1], "
                        f"not {self.language_min_score!r}")
    if self.language_model is not None:
      if not isinstance(self.language_model, str) or not self.language_model:
        raise ConfigError(f"clean.language_model must be a path to a fastText .bin, not {self.language_model!r}")
      check_language_model(self.language_model)
    if self.t2s:
      traditional_to_simplified()  # no OpenCC: one line now, not a failed task later


def text_of(doc) -> bytes:  # the content ExactDedup hashes; its xxhash takes bytes only
  return doc.text.encode("utf-8")


def build_stages(files: list[tuple[str, str]], out: str, s: CleanSettings):
  """[(name, pipeline, tasks)] in run order."""
  s.check()
  work = os.path.join(out, ".work")
  rep = os.path.join(work, "report")
  curated, final_tmp = os.path.join(work, "curated"), os.path.join(work, "final")
  exact_cfg = ExactDedupConfig(content_getter=text_of)
  mh_cfg = MinhashConfig(n_grams=s.n_grams, num_buckets=s.bands, hashes_per_bucket=s.rows)
  tasks = s.tasks or max(1, min(len(files), s.workers))

  def m(step, key, reason="dropped"):
    return Measured(step, key, rep, reason)

  curate = [m(SourceReader(files, s.text_key), "read"), m(Normalize(s.t2s), "normalize"),
            LanguageTag(s.zh_share, s.language_model, s.language_min_score),
            m(QualityFilter(s.thresholds), "quality"), m(MaskPII(), "pii"), ShardWriter(curated)]
  exact_filter = ExactDedupFilter(os.path.join(work, "exact_dups"), exact_cfg)
  return [
      ("curate", curate, tasks),
      ("exact_signatures", [ShardReader(curated), ExactDedupSignature(os.path.join(work, "exact_sigs"),
                                                                      exact_cfg)], tasks),
      ("exact_find", [ExactFindDedups(os.path.join(work, "exact_sigs"), os.path.join(work, "exact_dups"),
                                      exact_cfg)], 1),
      ("minhash_signatures", [ShardReader(curated), exact_filter,
                              Measured(MixedScriptMinhashSignature(os.path.join(work, "mh_sigs"), mh_cfg),
                                       "minhash_signatures", rep, sink=True)], tasks),
      ("minhash_buckets", [MinhashDedupBuckets(os.path.join(work, "mh_sigs"), os.path.join(work, "mh_buckets"),
                                               config=mh_cfg)], s.bands),
      ("minhash_clusters", [MinhashDedupCluster(os.path.join(work, "mh_buckets"),
                                                os.path.join(work, "mh_clusters"), config=mh_cfg,
                                                save_cluster_size=True)], 1),
      ("final", [ShardReader(curated), m(exact_filter, "exact_dedup", "exact duplicate"),
                 ClusterSizes(rep, "exact_cluster_sizes", "duplicate_count", 1),
                 m(MinhashDedupFilter(os.path.join(work, "mh_clusters"), load_cluster_sizes=True),
                   "near_dedup", "near duplicate"),
                 ClusterSizes(rep), ShardWriter(final_tmp, final=True, level=s.gzip_level)], tasks),
  ]


def run_stages(stages, out: str, executor: str = "local", workers: int = 2) -> dict[str, float]:
  """Runs the stages one after the other with datatrove's executor; returns each stage's wall seconds
  (about 0 for a stage that had finished before: its completion markers skip it)."""
  logs = os.path.join(out, ".work", "logs")
  seconds = {}
  for name, pipeline, tasks in stages:
    if executor == "ray":
      from datatrove.executor.ray import RayPipelineExecutor
      ex = RayPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=os.path.join(logs, name),
                               mem_per_cpu_gb=0.5)
    else:
      from datatrove.executor.local import LocalPipelineExecutor
      ex = LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks),
                                 logging_dir=os.path.join(logs, name))
    start = time.perf_counter()
    ex.run()
    seconds[name] = round(time.perf_counter() - start, 2)
  return seconds
