"""The packed layout handed to cuDNN (per-document offsets and lengths) and the float32 reference
every kernel is checked against. cuDNN itself needs a GPU: gpu_check runs it against the same
reference on packed rows."""

import jax.numpy as jnp
import numpy as np
import pytest

from xy_jax.models.attention import dot_product_attention, packed_offsets, reference_attention


def runs_by_loop(row):
  """(start, length) of each run of one non-zero id, read off one position at a time."""
  runs = []
  for t, s in enumerate(row):
    if s == 0:
      continue
    if t == 0 or row[t - 1] != s:
      runs.append([t, 0])
    runs[-1][1] += 1
  return runs


@pytest.mark.parametrize("max_segments", [1, 3, 8])
def test_packed_offsets_list_every_document_run(max_segments):
  rng = np.random.default_rng(0)
  rows = [np.repeat(rng.permutation(np.arange(1, 7)), rng.integers(1, 5, 6)) for _ in range(3)]
  seg = np.zeros((4, 24), np.int32)
  for r, row in enumerate(rows):
    seg[r, 2 * r:2 * r + len(row[:24 - 2 * r])] = row[:24 - 2 * r]  # left padding, packed runs, right padding
  seg[3, :] = 9  # one document filling the row
  offsets, lengths, count = (np.asarray(x) for x in packed_offsets(jnp.asarray(seg), max_segments))
  assert offsets.shape == (4, max_segments + 1) and lengths.shape == (4, max_segments)
  for r in range(4):
    runs = runs_by_loop(seg[r])
    assert count[r] == len(runs)
    kept = runs[:max_segments]
    assert offsets[r, :len(kept)].tolist() == [a for a, _ in kept]
    assert lengths[r, :len(kept)].tolist() == [n for _, n in kept]
    assert (offsets[r, len(kept):] == -1).all() and (lengths[r, len(kept):] == -1).all()


def test_reference_matches_documents_attended_one_by_one():
  """The reference on a packed row equals plain causal softmax attention on each document alone."""
  rng = np.random.default_rng(1)
  seg = np.array([[1, 1, 1, 2, 2, 2, 2, 0], [3, 3, 3, 3, 3, 4, 4, 4]], np.int32)
  q = rng.normal(size=(2, 8, 4, 8)).astype(np.float32)
  k, v = (rng.normal(size=(2, 8, 2, 8)).astype(np.float32) for _ in range(2))
  out = np.asarray(reference_attention(*(jnp.asarray(x) for x in (q, k, v, seg, seg))))
  for b in range(2):
    for s in set(seg[b].tolist()) - {0}:
      idx = np.flatnonzero(seg[b] == s)
      qs, ks, vs = q[b, idx], np.repeat(k[b, idx], 2, axis=1), np.repeat(v[b, idx], 2, axis=1)
      logits = np.einsum("tnh,snh->nts", qs, ks) / np.sqrt(8)
      logits = np.where(np.tril(np.ones((len(idx), len(idx)), bool)), logits, -np.inf)
      w = np.exp(logits - logits.max(-1, keepdims=True))
      w /= w.sum(-1, keepdims=True)
      np.testing.assert_allclose(out[b, idx], np.einsum("nts,snh->tnh", w, vs), atol=1e-5)


def test_xla_kernel_equals_the_reference_on_packed_rows():
  rng = np.random.default_rng(2)
  seg = jnp.asarray(np.array([[1, 1, 2, 2, 2, 3, 0, 0]] * 2, np.int32))
  q = jnp.asarray(rng.normal(size=(2, 8, 4, 8)), jnp.float32)
  k, v = (jnp.asarray(rng.normal(size=(2, 8, 2, 8)), jnp.float32) for _ in range(2))
  ours = dot_product_attention(q, k, v, q_segment_ids=seg, kv_segment_ids=seg, impl="xla")
  ref = reference_attention(q, k, v, seg, seg)
  valid = (seg > 0)[..., None, None]
  np.testing.assert_allclose(np.asarray(jnp.where(valid, ours, 0)), np.asarray(jnp.where(valid, ref, 0)), atol=1e-5)
