"""Metrics to `WORKDIR/metrics.jsonl` (one object per step) and TensorBoard, plus a progress bar."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter
from tqdm import tqdm


def _plain(v: Any):
  v = np.asarray(v)
  if v.ndim:
    return v.tolist()
  v = v.item()
  return None if isinstance(v, float) and not math.isfinite(v) else v


class MetricsWriter:
  """Only process 0 writes; other processes keep the same API and write nothing.

  `purge_step`: TensorBoard hides events at or after this step left by an earlier, interrupted
  run (a resume passes the restored step + 1, so steps are never shown twice).
  """

  def __init__(self, workdir: str, enabled: bool = True, purge_step: int | None = None):
    self.enabled = enabled
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
      self.tb = SummaryWriter(os.path.join(workdir, "tb"), purge_step=purge_step)

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    self.jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
    for k, v in record.items():
      if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
        self.tb.add_scalar(k, v, step)

  def flush(self) -> None:
    if self.enabled:
      self.jsonl.flush()
      self.tb.flush()

  def close(self) -> None:
    if self.enabled:
      self.jsonl.close()
      self.tb.close()


class Progress:
  """tqdm bar over steps with tokens/s and the latest loss; ETA comes from tqdm."""

  def __init__(self, total: int, initial: int, enabled: bool = True, desc: str = "train"):
    self.bar = tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, disable=not enabled,
                    dynamic_ncols=True, mininterval=1.0)
    self.last_time = time.time()

  def update(self, steps: int, **postfix) -> None:
    self.bar.update(steps)
    if postfix:
      self.bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()},
                           refresh=False)

  def write(self, msg: str) -> None:
    self.bar.write(msg, file=sys.stderr)

  def close(self) -> None:
    self.bar.close()
