"""The one training loop: config -> mesh -> state -> data -> steps -> metrics, eval, checkpoints.

Every stage (pretraining, SFT, reward modelling) supplies a `Stage`; the loop owns everything
else: sharded state creation or exact resume, the jitted step with donated state, per-step
metrics, periodic eval, checkpoints (async; SIGTERM saves and exits 0), and the non-finite guard.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import os
import signal
import time

import jax
import numpy as np
from jax.experimental import multihost_utils
from ml_collections import ConfigDict

from xy_jax import checkpoint
from xy_jax.data.pipeline import train_iterator
from xy_jax.train.metrics import MetricsWriter, Progress
from xy_jax.train.setup import setup
from xy_jax.train.state import TrainState


class TrainingError(RuntimeError):
  """The run cannot go on (e.g. non-finite losses); the message says why and what to try."""


@dataclasses.dataclass
class RunResult:
  steps_done: int
  last_loss: float | None
  stopped_by_signal: bool


class _Preemption:
  """SIGTERM/SIGINT set a flag; the loop saves at the next step boundary and exits cleanly."""

  def __init__(self):
    self.requested = False
    self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM,)}

  def _handle(self, signum, frame):
    del frame
    self.requested = True

  def agreed(self) -> bool:
    if jax.process_count() == 1:
      return self.requested
    flags = multihost_utils.process_allgather(np.asarray(self.requested))
    return bool(np.any(flags))

  def restore(self):
    for s, h in self._old.items():
      signal.signal(s, h)


def run(cfg: ConfigDict, workdir: str, log=print) -> RunResult:
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  rs = setup(cfg, log)
  stage, tok = rs.stage, rs.tokenizer

  # --- restore or create -----------------------------------------------------------------------
  ckpt = checkpoint.TrainCheckpointer(os.path.join(workdir, "checkpoints"), cfg.train.keep_checkpoints,
                                      cfg.train.keep_best, cfg.train.async_checkpointing, log)
  train_item = lambda s: {"opt_state": s.opt_state, "step": s.step,  # noqa: E731
                          "bad_streak": s.bad_streak, "bad_total": s.bad_total, "extra": s.extra}
  restored = ckpt.restore_latest(rs.abstract_state.params, train_item(rs.abstract_state))
  data_state = None
  if restored is not None:
    start, params, train, data_state, meta = restored
    state = TrainState(train["step"], params, train["opt_state"], train["bad_streak"],
                       train["bad_total"], train["extra"])
    log(f"resumed from {ckpt.directory}/{start}")
    old_mix = meta.get("stage_meta", {}).get("mixture")
    new_mix = stage.meta.get("mixture")
    if old_mix is not None and new_mix is not None and old_mix != new_mix:
      log(f"mixture weights changed at step {start}: {old_mix} -> {new_mix}")
  else:
    start = 0
    state = rs.init_state(log)

  def evaluate() -> dict[str, float]:
    """Per eval set: the stage's metrics from summed step outputs; `eval_loss` over all sets."""
    out, nll, count = {}, 0.0, 0.0
    for name, batches in stage.eval_sets.items():
      totals: dict[str, float] = {}
      for b in batches:
        sums = jax.device_get(rs.eval_step(state.params, rs.to_device(rs.local_rows(b))))
        for k, v in sums.items():
          totals[k] = totals.get(k, 0.0) + float(v)
      if totals.get("count"):
        out[f"eval/loss/{name}"] = totals["nll_sum"] / totals["count"]
        for k, v in stage.summarize_eval(totals).items():
          out[f"eval/{k}/{name}"] = v
      nll, count = nll + totals.get("nll_sum", 0.0), count + totals.get("count", 0.0)
    if count:
      out["eval_loss"] = nll / count
    return out

  meta = {"model": rs.model_cfg.to_dict(), "kind": stage.kind, "stage": stage.name,
          "stage_meta": stage.meta, "config": json.loads(cfg.to_json_best_effort())}
  if is_main and tok.model_file:

    os.makedirs(ckpt.directory, exist_ok=True)
    shutil.copyfile(tok.model_file, os.path.join(ckpt.directory, checkpoint.TOKENIZER_FILE))

  # --- the loop --------------------------------------------------------------------------------
  iterator = train_iterator(stage.train_source, cfg.data.prefetch)
  if data_state is not None:
    iterator.set_state(data_state)
  writer = MetricsWriter(workdir, enabled=is_main)
  progress = Progress(cfg.train.steps, start, enabled=is_main)
  preempt = _Preemption()
  pending: list[tuple[int, int, int, dict]] = []  # (step, bucket, tokens processed, device metrics)
  window_start, last_loss, stopped = time.time(), None, False
  peak = cfg.train.peak_flops_per_device * jax.device_count()

  def flush_metrics():
    nonlocal window_start, last_loss
    if not pending:
      return
    host = jax.device_get([m for *_, m in pending])
    elapsed = max(time.time() - window_start, 1e-9)
    tokens = sum(t for _, _, t, _ in pending)
    tps = tokens / elapsed
    for (step, bucket, n_tok, _), m in zip(pending, host):
      record = {**stage.summarize(m), "bucket": bucket, "tokens_per_sec": tps, "row_tokens": n_tok}
      if peak:
        record["mfu"] = tps * stage.flops_per_token(bucket) / peak
      writer.write(step, record)
      loss = float(m["loss"])
      if np.isfinite(loss):
        last_loss = loss
    latest = host[-1]
    progress.update(len(pending), loss=float(latest["loss"]), tok_s=f"{tps:,.0f}",
                    bucket=pending[-1][1])
    streak = int(latest["bad_streak"])
    pending.clear()
    writer.flush()
    window_start = time.time()
    if streak >= cfg.train.max_bad_steps:
      raise TrainingError(
          f"loss or gradients were not finite for {streak} steps in a row (train.max_bad_steps="
          f"{cfg.train.max_bad_steps}); those updates were skipped. Last finite loss: {last_loss}. "
          f"Lower optim.lr, raise optim.warmup_steps or check the data")

  saved_step = start
  last_eval: dict = {}  # the newest held-out metrics travel in each checkpoint's meta

  def save(step: int, metrics: dict | None = None, force: bool = False):
    nonlocal saved_step
    if step == saved_step:
      return
    ckpt.save(step, state.params, train_item(state), iterator.get_state(),
              dict(meta, last_eval=last_eval), metrics=metrics, force=force)
    saved_step = step

  step = start
  try:
    while step < cfg.train.steps:
      batch = next(iterator)
      bucket = int(batch.pop("bucket"))
      row_tokens = stage.tokens_in_batch(batch) * jax.process_count()
      state, metrics = rs.train_step(state, rs.to_device(batch))
      step += 1
      pending.append((step, bucket, row_tokens, metrics))
      last = step == cfg.train.steps
      if step % cfg.train.log_every == 0 or last:
        flush_metrics()
      eval_metrics = None
      if stage.eval_sets and (step % cfg.train.eval_every == 0 or last):
        flush_metrics()
        eval_metrics = evaluate()
        last_eval = dict(eval_metrics, step=step)
        writer.write(step, eval_metrics)
        writer.flush()
        progress.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in eval_metrics.items()))
      if step % cfg.train.checkpoint_every == 0 or last:
        save(step, {"eval_loss": eval_metrics["eval_loss"]} if eval_metrics else None)
      if preempt.agreed() and not last:
        flush_metrics()
        save(step, force=True)
        ckpt.wait()
        progress.write(f"preemption signal: saved step {step} to {ckpt.directory}; exiting")
        stopped = True
        break
  finally:
    ckpt.wait()
    ckpt.close()
    progress.close()
    writer.close()
    preempt.restore()
    iterator.close()
  return RunResult(step, last_loss, stopped)
