"""XuanYuan2 length bucketing and the step-indexed pipeline."""

import collections
import threading

import numpy as np
import pytest

from xy_jax.data.buckets import build_row, pack, split_documents
from xy_jax.data.pipeline import EpochPlanner, SourceRows, StepBatches
from xy_jax.data.prepared import PreparedSource, prepare_source
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError

BUCKETS = (64, 128, 256)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  tok = load_tokenizer(None)
  root = str(tmp_path_factory.mktemp("prepared"))
  out = []
  for name, path in (("finance", "data/pretrain/finance.jsonl"), ("reports", "data/pretrain/reports")):
    prepare_source(name, [path], root, tok, workers=2)
    out.append(PreparedSource.open(root, name))
  return out


def test_pack_keeps_every_token_and_respects_buckets():
  rng = np.random.default_rng(0)
  lengths = np.concatenate([rng.integers(1, 60, 300), rng.integers(100, 250, 80),
                            rng.integers(300, 900, 10)])  # some longer than the largest bucket
  packed = pack(lengths, BUCKETS)
  covered = collections.Counter()
  for b, rows in packed.items():
    for r in range(rows.num_rows):
      pieces = rows.pieces(r)
      assert sum(n for _, _, n in pieces) <= b
      for d, s, n in pieces:
        covered.update((d, t) for t in range(s, s + n))
  expected = collections.Counter((d, t) for d, n in enumerate(lengths) for t in range(n))
  assert covered == expected  # nothing lost, nothing duplicated
  # Long pieces sit in long rows; most short documents sit in short rows.
  short_in_short = short_total = 0
  for b, rows in packed.items():
    assert (rows.size <= b).all()
    assert (rows.size[rows.size > 128] > 0).all() and (b == 256 or (rows.size <= 128).all())
    short = rows.size <= 64
    short_total += short.sum()
    short_in_short += short.sum() if b == 64 else 0
  assert short_in_short / short_total > 0.5


def test_split_documents_into_full_chunks_and_remainder():
  doc, start, size = split_documents(np.array([10, 600, 256]), 256)
  assert list(zip(doc, start, size)) == [(0, 0, 10), (1, 0, 256), (1, 256, 256), (1, 512, 88),
                                         (2, 0, 256)]


def test_build_row_segments_positions_and_loss_mask():
  row = build_row([np.array([1, 5, 6, 2]), np.array([1, 7, 2])], 10, pad_id=3)
  assert row["tokens"].tolist() == [1, 5, 6, 2, 1, 7, 2, 3, 3, 3]
  assert row["segment_ids"].tolist() == [1, 1, 1, 1, 2, 2, 2, 0, 0, 0]
  assert row["positions"].tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 0, 0]
  # t predicts t+1 within its document: no loss across the boundary or on padding.
  assert row["loss_mask"].tolist() == [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]


def _epoch_token_multiset(sources, planner, pad_id):
  src = StepBatches(planner, pad_id, num_steps=10**6)
  n = len(planner.epoch(0))
  tokens = collections.Counter()
  buckets = collections.Counter()
  for step in range(n):
    batch = src[step]
    b = src.row_length(step)
    buckets[b] += 1
    assert batch["tokens"].shape == (2048 // b, b)
    for toks, seg, pos in zip(batch["tokens"], batch["segment_ids"], batch["positions"]):
      for s in np.unique(seg[seg > 0]):
        where = np.nonzero(seg == s)[0]
        assert (np.diff(where) == 1).all()
        assert pos[where].tolist() == list(range(len(where)))  # positions restart per document
        tokens.update(toks[where].tolist())
  return tokens, buckets


def test_epoch_yields_each_row_once(sources):
  tok = load_tokenizer(None)
  rows = [SourceRows(s, BUCKETS, "train", 0.0, seed=0) for s in sources]
  # Weights equal to the natural token shares: every row exactly once per epoch.
  natural = [sum(r.packed[b].num_rows * b for b in BUCKETS) for r in rows]
  planner = EpochPlanner(rows, natural, BUCKETS, 2048, seed=1)
  got, buckets = _epoch_token_multiset(sources, planner, tok.pad_id)
  expected = collections.Counter()
  for r in rows:
    for b in BUCKETS:
      for i in range(r.packed[b].num_rows):
        expected.update(t for d, s, n in r.packed[b].pieces(i)
                        for t in r.source.slice(int(r.doc_ids[d]), s, n).tolist())
  assert got == expected  # every row exactly once: nothing lost, nothing duplicated
  assert set(buckets) == {64, 128, 256} and buckets[256] > 0


def test_plan_is_deterministic_and_process_slices_cover_the_batch(sources):
  tok = load_tokenizer(None)
  rows = [SourceRows(s, BUCKETS, "train", 0.05, seed=0) for s in sources]
  a = EpochPlanner(rows, [0.7, 0.3], BUCKETS, 2048, seed=3)
  b = EpochPlanner(rows, [0.7, 0.3], BUCKETS, 2048, seed=3)
  for step in (0, 5, 40, 200):  # 200 is past the first epoch
    np.testing.assert_array_equal(a.step(step).rows, b.step(step).rows)
  whole = StepBatches(a, tok.pad_id, 10**6)[7]
  halves = [StepBatches(a, tok.pad_id, 10**6, p, 2)[7] for p in (0, 1)]
  np.testing.assert_array_equal(np.concatenate([h["tokens"] for h in halves]), whole["tokens"])


def test_mixture_weights_set_token_shares(sources):
  rows = [SourceRows(s, BUCKETS, "train", 0.0, seed=0) for s in sources]
  planner = EpochPlanner(rows, [0.8, 0.2], BUCKETS, 2048, seed=0)
  per_source = collections.Counter()
  for plan in planner.epoch(0):
    for s, _ in plan.rows.tolist():
      per_source[s] += plan.bucket
  share = per_source[0] / sum(per_source.values())
  assert 0.75 < share < 0.85


def test_explicit_bucket_weights(sources):
  rows = [SourceRows(s, BUCKETS, "train", 0.0, seed=0) for s in sources]
  planner = EpochPlanner(rows, [1, 1], BUCKETS, 2048, seed=0, bucket_weights=[0, 0, 1])
  assert {p.bucket for p in planner.epoch(0)} == {256}


def test_held_out_documents_never_train(sources):
  train = SourceRows(sources[0], BUCKETS, "train", 0.1, seed=0)
  held = SourceRows(sources[0], BUCKETS, "eval", 0.1, seed=0)
  assert not set(train.doc_ids) & set(held.doc_ids)
  assert len(train.doc_ids) + len(held.doc_ids) == sources[0].num_docs


def test_bucket_weights_on_empty_buckets_name_them(sources):
  # "finance" (short news) packs into 64-token rows only: weight on 128 and 256 alone selects nothing.
  rows = [SourceRows(sources[0], BUCKETS, "train", 0.0, seed=0)]
  filled = [b for b in BUCKETS if rows[0].packed[b].num_rows]
  assert filled == [64]
  planner = EpochPlanner(rows, [1], BUCKETS, 2048, seed=0, bucket_weights=[0, 1, 1])
  with pytest.raises(ConfigError, match=r"the weighted bucket\(s\) \[128, 256\] hold no rows of "
                                        r"this data; rows exist only in bucket\(s\) \[64\]"):
    planner.step(0)


def test_steps_asked_from_two_threads_at_once_match_one_thread(sources):
  """grain's prefetch thread and the loop (row_length) ask for steps concurrently: each epoch's
  length must be recorded once (a 300-step run once died with an IndexError two epochs in)."""
  rows = [SourceRows(s, BUCKETS, "train", 0.05, seed=0) for s in sources]
  reference = EpochPlanner(rows, [0.9, 0.1], BUCKETS, 2048, seed=3)
  lengths = [len(reference.epoch(e)) for e in range(6)]
  assert len(set(lengths)) > 1  # epochs differ in length, so a length recorded twice shifts the plan
  last = sum(lengths) - 1
  for trial in range(5):
    shared = EpochPlanner(rows, [0.9, 0.1], BUCKETS, 2048, seed=3)
    barrier = threading.Barrier(4)
    got, errors = {}, []

    def ask(offset, shared=shared, barrier=barrier, got=got, errors=errors):
      barrier.wait()
      try:
        for i in range(last - offset, -1, -97):
          got[i] = shared.step(i).rows
      except Exception as e:  # noqa: BLE001  reported below
        errors.append(repr(e))

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(4)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    assert not errors, (trial, errors[:2])
    for i, plan_rows in got.items():
      np.testing.assert_array_equal(plan_rows, reference.step(i).rows)
