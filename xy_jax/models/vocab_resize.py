"""New vocabulary rows for an extended tokenizer: old rows kept bit for bit, each new piece's row the
mean of the base rows of the pieces the base tokenizer split its text into (XuanYuan's rule, as
Chinese-LLaMA and others initialise added pieces); padding pieces get the mean of all base rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def extended_rows(table: np.ndarray, base_ids: Sequence[Sequence[int]], padding: int) -> np.ndarray:
  """`table` [V, D] (one row per piece) -> [V + len(base_ids) + padding, D]."""
  mean = table.mean(axis=0, dtype=np.float64)
  new = np.stack([table[list(ids)].mean(axis=0, dtype=np.float64) if len(ids) else mean
                  for ids in base_ids]) if base_ids else np.zeros((0, table.shape[1]))
  pad = np.broadcast_to(mean, (padding, table.shape[1]))
  return np.concatenate([table, new.astype(table.dtype), pad.astype(table.dtype)])
