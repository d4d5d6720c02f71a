"""The pretraining input pipeline: mixture of sources x length buckets -> one batch per step.

Each epoch is planned from the seed alone, so every process computes the same plan and loads only
its own rows:
  1. mixture: every source contributes rows until its share of the epoch's tokens reaches its
     weight (rows repeat for up-weighted sources, a random subset for down-weighted ones);
  2. the chosen rows of each bucket are shuffled and cut into batches of `tokens_per_step /
     bucket_length` rows, so tokens per step stay constant (a bucket's last batch is topped up
     with empty rows that carry no loss, so no row is dropped);
  3. bucket choice per step: by default all batches of the epoch are shuffled together, which
     draws each step's bucket with probability proportional to the tokens the bucket has left;
     with explicit `bucket_weights` each step draws a bucket from those weights.
Step i's batch is a pure function of (seed, i): grain's `MapDataset` serves it by index, and the
iterator state saved with each checkpoint resumes with the next batch. `data.mixture_schedule`
changes the weights at given steps: each segment is planned on its own (ScheduledPlanner).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import threading
from collections.abc import Sequence

import grain
import numpy as np

from xy_jax.data.buckets import PackedRows, build_row, pack
from xy_jax.data.step_source import StepSource
from xy_jax.data.prepared import PreparedSource
from xy_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class StepPlan:
  bucket: int  # row length
  rows: np.ndarray  # [rows_per_step, 2] (source index, row index), global batch


def eval_mask(num_docs: int, fraction: float, seed: int) -> np.ndarray:
  """Deterministic held-out documents (True = eval)."""
  if fraction <= 0:
    return np.zeros(num_docs, bool)
  return np.random.default_rng([seed, 7919]).random(num_docs) < fraction


class SourceRows:
  """One prepared source packed into bucketed rows (train split or eval split)."""

  def __init__(self, source: PreparedSource, buckets: Sequence[int], split: str, eval_fraction: float,
               seed: int):
    self.source = source
    lengths = source.lengths()
    held_out = eval_mask(len(lengths), eval_fraction, seed)
    keep = held_out if split == "eval" else ~held_out
    self.doc_ids = np.nonzero(keep)[0]
    self.packed: dict[int, PackedRows] = pack(lengths[self.doc_ids], buckets)

  def row(self, bucket: int, index: int, pad_id: int) -> dict[str, np.ndarray]:
    spans = [(int(self.doc_ids[d]), s, n) for d, s, n in self.packed[bucket].pieces(index)]
    pieces = [self.source.slice(*span) for span in spans]
    targets = None if self.source.targets is None else [self.source.target_slice(*s) for s in spans]
    return build_row(pieces, bucket, pad_id, targets)


class EpochPlanner:
  """Deterministic per-epoch batch plans over several sources and buckets."""

  def __init__(self, sources: Sequence[SourceRows], weights: Sequence[float], buckets: Sequence[int],
               tokens_per_step: int, seed: int, bucket_weights: Sequence[float] | None = None):
    self.sources = list(sources)
    w = np.asarray(weights, np.float64)
    self.weights = w / w.sum()
    self.buckets = tuple(sorted(buckets))
    self.rows_per_step = {b: tokens_per_step // b for b in self.buckets}
    self.seed = seed
    self.bucket_weights = None if bucket_weights is None else np.asarray(bucket_weights, np.float64)
    self._epoch_lengths: list[int] = []
    # step() runs on grain's prefetch thread and the loop's thread (row_length) at once: two
    # threads recording the same epoch's length would shift every later epoch's start.
    self._lengths_lock = threading.Lock()

  @functools.lru_cache(maxsize=2)
  def epoch(self, e: int) -> list[StepPlan]:
    chosen: dict[int, list[np.ndarray]] = {b: [] for b in self.buckets}
    natural = sum(src.packed[b].num_rows * b for src in self.sources for b in self.buckets)
    for s, src in enumerate(self.sources):
      table = np.asarray([(b, r) for b in self.buckets for r in range(src.packed[b].num_rows)], np.int64)
      if not len(table):
        continue
      rng = np.random.default_rng([self.seed, e, s])
      need = self.weights[s] * natural
      picked, tokens = [], 0
      while tokens < need:
        order = rng.permutation(len(table))
        cum = tokens + np.cumsum(table[order, 0])
        take = order[: int(np.searchsorted(cum, need)) + 1]
        picked.append(take)
        tokens = int(cum[len(take) - 1])
      picked = table[np.concatenate(picked)] if picked else table[:0]
      for b in self.buckets:
        rows = picked[picked[:, 0] == b, 1]
        chosen[b].append(np.stack([np.full(len(rows), s), rows], axis=1))
    batches: list[StepPlan] = []
    per_bucket: dict[int, list[StepPlan]] = {}
    for b in self.buckets:
      rows = np.concatenate(chosen[b]) if chosen[b] else np.zeros((0, 2), np.int64)
      rows = rows[np.random.default_rng([self.seed, e, 1_000_003, b]).permutation(len(rows))]
      n = self.rows_per_step[b]
      if len(rows) % n:  # the last batch is topped up with empty rows (no loss) so nothing is lost
        rows = np.concatenate([rows, np.full((n - len(rows) % n, 2), -1, rows.dtype)])
      per_bucket[b] = [StepPlan(b, rows[i:i + n]) for i in range(0, len(rows), n)]
      batches += per_bucket[b]
    rng = np.random.default_rng([self.seed, e, 2_000_003])
    if self.bucket_weights is None:
      return [batches[i] for i in rng.permutation(len(batches))]
    avail = np.asarray([len(per_bucket[b]) > 0 for b in self.buckets])
    p = self.bucket_weights * avail
    if p.sum() == 0:
      weighted = [b for b, w in zip(self.buckets, self.bucket_weights) if w > 0]
      filled = [b for b, a in zip(self.buckets, avail) if a]
      raise ConfigError(f"data.bucket_weights={tuple(self.bucket_weights.tolist())}: the weighted "
                        f"bucket(s) {weighted} hold no rows of this data; rows exist only in "
                        f"bucket(s) {filled}")
    draws = rng.choice(len(self.buckets), size=len(batches), p=p / p.sum())
    seen = {b: 0 for b in self.buckets}
    plan = []
    for k in draws.tolist():
      b = self.buckets[k]
      plan.append(per_bucket[b][seen[b] % len(per_bucket[b])])
      seen[b] += 1
    return plan

  def _epoch_length(self, e: int) -> int:
    with self._lengths_lock:
      while len(self._epoch_lengths) <= e:
        n = len(self.epoch(len(self._epoch_lengths)))
        if n == 0:
          raise ConfigError("data.sources: the data is too small for one batch; lower "
                            "data.tokens_per_step or add data")
        self._epoch_lengths.append(n)
      return self._epoch_lengths[e]

  def step(self, i: int) -> StepPlan:
    e, start = 0, 0
    while i >= start + self._epoch_length(e):
      start += self._epoch_length(e)
      e += 1
    return self.epoch(e)[i - start]


Schedule = list[list]  # [first step, {source name: weight}], by step


class ScheduledPlanner:
  """Mixture weights that change at given steps. Segment k (from step s_k) is planned by its own
  EpochPlanner, seeded by the run's seed and s_k, from that planner's first batch: step i's batch is
  a pure function of the schedule, the seed and i, so a resume across a change is exact."""

  def __init__(self, sources: Sequence[SourceRows], names: Sequence[str], schedule: Schedule,
               buckets: Sequence[int], tokens_per_step: int, seed: int,
               bucket_weights: Sequence[float] | None = None):
    self.sources, self.names, self.schedule = list(sources), list(names), list(schedule)
    self._args = (buckets, tokens_per_step, seed, bucket_weights)
    self.starts = [start for start, _ in self.schedule]
    self.planners = [EpochPlanner(sources, [weights.get(n, 0.0) for n in names], buckets, tokens_per_step,
                                  seed if start == 0 else int(np.random.default_rng([seed, start]).integers(2**31)),
                                  bucket_weights)
                     for start, weights in self.schedule]

  @property
  def buckets(self) -> tuple[int, ...]:
    return self.planners[0].buckets

  def epoch(self, e: int) -> list[StepPlan]:
    """The first segment's epoch `e` (what a run without a schedule trains on)."""
    return self.planners[0].epoch(e)

  def step(self, i: int) -> StepPlan:
    k = bisect.bisect_right(self.starts, i) - 1
    return self.planners[k].step(i - self.starts[k])

  def replanned(self, schedule: Schedule) -> "ScheduledPlanner":
    return ScheduledPlanner(self.sources, self.names, schedule, *self._args)


def resumed_schedule(recorded: Schedule | None, configured: Schedule, step: int) -> Schedule:
  """The schedule a run resumed at `step` follows: what it followed before `step` (as recorded in
  its checkpoint), and from `step` the configured one. When the configured weights at `step`
  differ from the recorded ones (changed by hand), a new segment starts at `step`: the mixture is
  re-planned from there instead of the old plan's batches being drawn with other weights."""
  if not recorded:
    return configured

  def at(schedule, i):
    return next(w for s, w in reversed(schedule) if s <= i)

  past = [[s, w] for s, w in recorded if s <= step]
  if at(recorded, step) != at(configured, step):
    past = [[s, w] for s, w in past if s < step] + [[step, at(configured, step)]]
  return past + [[s, w] for s, w in configured if s > step]


class StepBatches:
  """grain random-access source: index = training step, element = this process's rows."""

  def __init__(self, planner: ScheduledPlanner, pad_id: int, num_steps: int, process_index: int = 0,
               process_count: int = 1):
    self.planner, self.pad_id, self.num_steps = planner, pad_id, num_steps
    self.process_index, self.process_count = process_index, process_count

  def reschedule(self, schedule: Schedule) -> None:
    self.planner = self.planner.replanned(schedule)

  def __len__(self) -> int:
    return self.num_steps

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    plan = self.planner.step(int(step))
    per_process = len(plan.rows) // self.process_count
    mine = plan.rows[self.process_index * per_process:(self.process_index + 1) * per_process]
    rows = [self.planner.sources[s].row(plan.bucket, r, self.pad_id) if s >= 0
            else build_row([], plan.bucket, self.pad_id) for s, r in mine.tolist()]
    batch = {k: np.stack([row[k] for row in rows]) for k in rows[0]}
    batch["source"] = mine[:, 0].astype(np.int32)
    return batch

  def row_length(self, step: int) -> int:
    return self.planner.step(int(step)).bucket


def train_iterator(source: StepSource, prefetch: int = 2) -> grain.DatasetIterator:
  ds = grain.MapDataset.source(source).to_iter_dataset()
  if prefetch:
    ds = grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=prefetch)
  return iter(ds)


def eval_batches(sources: Sequence[SourceRows], length: int, rows_per_batch: int, max_rows: int,
                 pad_id: int) -> dict[str, list[dict[str, np.ndarray]]]:
  """Held-out rows of each source, packed at one length, in fixed batches (for per-source loss)."""
  out = {}
  for index, src in enumerate(sources):
    packed = src.packed[length]
    n = min(packed.num_rows, max_rows)
    rows = [src.row(length, r, pad_id) for r in range(n)]
    batches = []
    for i in range(0, n, rows_per_batch):
      chunk = rows[i:i + rows_per_batch]
      while len(chunk) < rows_per_batch:  # pad the last batch with empty rows (no loss)
        chunk.append({k: np.zeros_like(v) for k, v in rows[0].items()})
      batches.append({k: np.stack([r[k] for r in chunk]) for k in chunk[0]})
    for batch in batches:
      batch["source"] = np.full(rows_per_batch, index, np.int32)
    out[src.source.name] = batches
  return out
