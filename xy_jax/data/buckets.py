"""XuanYuan2 length bucketing: documents go to 2k/4k/8k/16k rows by a greedy strategy.

Greedy best-fit-decreasing over all buckets: pieces (documents; those longer than the largest
bucket split into full-length chunks plus a remainder) are taken longest first; each goes into the
open row whose free space fits it most tightly, and when none fits it opens a row of the smallest
bucket that holds it. Long documents therefore land in long rows, short ones in short rows, and the
tail of a long row is filled by the next-longest documents rather than by many tiny ones.
"""

from __future__ import annotations

import bisect
import dataclasses

import numpy as np

DEFAULT_BUCKETS = (2048, 4096, 8192, 16384)


@dataclasses.dataclass
class PackedRows:
  """Rows of one bucket length. Row r holds pieces `row_ptr[r]:row_ptr[r+1]`."""

  length: int
  row_ptr: np.ndarray  # [rows + 1] int64
  doc: np.ndarray  # [pieces] int64: document index within the source
  start: np.ndarray  # [pieces] int64: first token of the piece within its document
  size: np.ndarray  # [pieces] int64

  @property
  def num_rows(self) -> int:
    return len(self.row_ptr) - 1

  def pieces(self, row: int) -> list[tuple[int, int, int]]:
    lo, hi = int(self.row_ptr[row]), int(self.row_ptr[row + 1])
    return list(zip(self.doc[lo:hi].tolist(), self.start[lo:hi].tolist(), self.size[lo:hi].tolist()))

  def tokens(self) -> int:
    return int(self.size.sum())


def split_documents(lengths: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(doc, start, size) pieces; a document longer than `max_len` becomes consecutive chunks."""
  lengths = np.asarray(lengths, np.int64)
  n_chunks = np.maximum(1, -(-lengths // max_len))
  doc = np.repeat(np.arange(len(lengths)), n_chunks)
  first = np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
  k = np.arange(len(doc)) - first
  start = k * max_len
  size = np.minimum(max_len, lengths[doc] - start)
  keep = size > 0
  return doc[keep], start[keep], size[keep]


def pack(lengths: np.ndarray, buckets=DEFAULT_BUCKETS) -> dict[int, PackedRows]:
  """Assign every document of one source to rows of the given bucket lengths."""
  buckets = tuple(sorted(int(b) for b in buckets))
  doc, start, size = split_documents(lengths, buckets[-1])
  order = np.lexsort((doc, -size))  # longest first, ties by document index: deterministic
  bucket_edges = np.asarray(buckets)
  row_bucket: list[int] = []
  row_items: list[list[int]] = []
  free_keys: list[tuple[int, int]] = []  # sorted (free space, row id) of rows with room left
  for piece in order.tolist():
    n = int(size[piece])
    i = bisect.bisect_left(free_keys, (n, -1))
    if i < len(free_keys):
      free, row = free_keys.pop(i)
      row_items[row].append(piece)
      if free - n > 0:
        bisect.insort(free_keys, (free - n, row))
    else:
      b = int(bucket_edges[np.searchsorted(bucket_edges, n)])
      row = len(row_bucket)
      row_bucket.append(b)
      row_items.append([piece])
      if b - n > 0:
        bisect.insort(free_keys, (b - n, row))
  out = {}
  for b in buckets:
    rows = [items for rb, items in zip(row_bucket, row_items) if rb == b]
    flat = np.asarray([p for items in rows for p in items], np.int64)
    row_ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(items) for items in rows], out=row_ptr[1:])
    out[b] = PackedRows(b, row_ptr, doc[flat] if len(flat) else flat, start[flat] if len(flat) else flat,
                        size[flat] if len(flat) else flat)
  return out


def build_row(pieces: list[np.ndarray], length: int, pad_id: int,
              targets: list[np.ndarray | None] | None = None) -> dict[str, np.ndarray]:
  """One packed row from token slices (one segment each).

  `loss_mask[t]` is 1 where position t predicts token t+1 of the same document: padding and each
  document's last token (whose successor belongs to another document) carry no loss. With
  `targets` (SFT), only positions whose next token is a target (an answer token) carry loss.
  """
  tokens = np.full(length, pad_id, np.int32)
  segment_ids = np.zeros(length, np.int32)
  positions = np.zeros(length, np.int32)
  offset = 0
  for seg, ids in enumerate(pieces, 1):
    n = len(ids)
    tokens[offset:offset + n] = ids
    segment_ids[offset:offset + n] = seg
    positions[offset:offset + n] = np.arange(n)
    offset += n
  if offset > length:
    raise ValueError(f"row overflow: {offset} tokens in a {length}-token row")
  loss_mask = np.zeros(length, np.int32)
  loss_mask[:-1] = (segment_ids[:-1] > 0) & (segment_ids[:-1] == segment_ids[1:])
  if targets is not None:
    is_target = np.zeros(length, np.int32)
    offset = 0
    for ids, tgt in zip(pieces, targets):
      is_target[offset:offset + len(ids)] = 1 if tgt is None else tgt
      offset += len(ids)
    loss_mask[:-1] &= is_target[1:]
  return {"tokens": tokens, "segment_ids": segment_ids, "positions": positions, "loss_mask": loss_mask}


def bucket_table(packed: dict[int, PackedRows]) -> list[dict]:
  """Per bucket: rows, tokens, padding fraction (the seed's table, before timing)."""
  table = []
  for b, rows in sorted(packed.items()):
    capacity = rows.num_rows * b
    tokens = rows.tokens()
    table.append({"bucket": b, "rows": rows.num_rows, "tokens": tokens,
                  "padding": 1 - tokens / capacity if capacity else 0.0,
                  "docs_per_row": len(rows.doc) / rows.num_rows if rows.num_rows else 0.0})
  return table
