"""A wrapper step that measures another: documents and bytes in and out by source and language,
drops by reason with a few truncated examples, the step's own counters and its time.

Each task writes its tally to `report_dir/{step}/{rank:05d}.json`; report.py merges them."""

from __future__ import annotations

import collections
import json
import os
import time

from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean.notes import DROP_REASON

EXAMPLES_PER_REASON = 3
EXAMPLE_CHARS = 200


class Stopwatch:
  seconds = 0.0


# CPU time of this process, not wall time: on a shared machine a step's wall time counts the time
# other processes held the core, and docs/s per core is what the report gives.
_clock = time.process_time


def _timed(items, watch: Stopwatch):
  """Yields from `items`, adding the CPU time each item took to produce to `watch` (not the time
  the consumer spends between items)."""
  it = iter(items)
  while True:
    t = _clock()
    try:
      item = next(it)
    except StopIteration:
      return
    finally:
      watch.seconds += _clock() - t
    yield item


_last_text: list = [None, 0]


def _utf8_length(text: str) -> int:
  """len(text.encode()), remembered for the last text: a document is counted going out of one step
  and into the next (and in and out of a step that keeps its text) with the same str object."""
  if text is not _last_text[0]:
    _last_text[:] = [text, len(text.encode("utf-8", "surrogatepass"))]
  return _last_text[1]


class Measured(PipelineStep):
  """Runs `step`; a document that goes in and does not come out was dropped for the reason the
  step put in its metadata, else for `default_reason` (datatrove's dedup filters name none).
  A `sink` step keeps every document (its output is files): in and out are the same."""

  type = "📊 - STATS"

  def __init__(self, step: PipelineStep, key: str, report_dir: str, default_reason: str = "dropped",
               sink: bool = False):
    super().__init__()
    self.step, self.key, self.report_dir, self.default_reason = step, key, report_dir, default_reason
    self.sink = sink  # the step's run() consumes the documents and yields none (MinHash signatures)
    self.name = key

  def run(self, data, rank: int = 0, world_size: int = 1):
    tally = collections.defaultdict(collections.Counter)
    examples = collections.defaultdict(list)
    upstream, busy = Stopwatch(), Stopwatch()  # time spent producing documents: before us, in the step
    pending = []  # the document handed in and not yet seen coming out
    called = _clock()

    def settle():
      for doc in pending:
        reason = doc.metadata.pop(DROP_REASON, None) or self.default_reason
        tally["dropped"][reason] += 1
        tally["dropped_by_language"][f"{doc.metadata.get('language', '?')}: {reason}"] += 1
        if len(examples[reason]) < EXAMPLES_PER_REASON:
          examples[reason].append(f"{doc.id}: {doc.text[:EXAMPLE_CHARS]}")
      pending.clear()

    def inputs():
      for doc in _timed(data or (), upstream):
        settle()
        self._count(tally, "in", doc)
        if not self.sink:
          pending.append(doc)
        yield doc

    outputs = self.step.run(inputs(), rank, world_size)
    if self.sink:  # the call itself did the step's work; every document went in and none is dropped
      busy.seconds = _clock() - called
      for counts in tally.values():  # "in" -> "out", "source: in" -> "source: out"
        counts.update({k[:-2] + "out": v for k, v in counts.items() if k.endswith("in")})
      outputs = ()
    for doc in _timed(outputs, busy):
      if pending and pending[-1] is doc:
        pending.pop()
      settle()
      self._count(tally, "out", doc)
      doc.metadata.pop(DROP_REASON, None)
      yield doc
    settle()
    self._write(rank, tally, examples, busy.seconds - upstream.seconds)

  @staticmethod
  def _count(tally, way: str, doc) -> None:
    n = _utf8_length(doc.text)
    tally["docs"][way] += 1
    tally["bytes"][way] += n
    tally["by_source"][f"{doc.metadata.get('source', '?')}: {way}"] += 1
    tally["by_language"][f"{doc.metadata.get('language', '?')}: {way}"] += 1

  def _write(self, rank, tally, examples, seconds) -> None:
    out = {k: dict(v) for k, v in tally.items()}
    out["counters"] = dict(getattr(self.step, "counters", {}))
    out["examples"] = dict(examples)
    out["seconds"] = seconds
    folder = os.path.join(self.report_dir, self.key)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{rank:05d}.json")
    with open(path + ".tmp", "w") as f:
      json.dump(out, f, ensure_ascii=False)
    os.replace(path + ".tmp", path)
