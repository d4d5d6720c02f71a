"""The one training loop: config -> mesh -> state -> data -> steps -> metrics, eval, checkpoints.

Every stage supplies a `Task` and its `Learner` (train.task, train.learner); the loop owns everything
else: sharded state creation or exact resume, the jitted step with donated state, per-step
metrics, periodic eval, checkpoints (async; SIGTERM and Ctrl-C save at the next step boundary), the
non-finite guard, and one run per workdir (a lock).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import os
import signal
import time
from typing import Any, Callable

import jax
import numpy as np
from ml_collections import ConfigDict

from xy_jax import distributed
from xy_jax.data.pipeline import train_iterator
from xy_jax.errors import ConfigError, TrainingError
from xy_jax.train import adapters, trainable
from xy_jax.train.eval_tasks import EvalTasks, eval_splits
from xy_jax.train.interrupts import Interrupts
from xy_jax.train.metrics import MetricsWriter, Progress
from xy_jax.train.setup import setup
from xy_jax.train.state import TrainState
from xy_jax.train.workdir import WorkdirLock, truncate_metrics
from xy_jax.weights import layout


@dataclasses.dataclass
class RunResult:
  steps_done: int
  last_loss: float | None
  stopped_by_signal: int | None  # the signal number when a signal ended the run early


def _reselect(rs, state: TrainState, old_pattern: str, step: int, log) -> TrainState:
  """A resume under another optim.trainable: moments carry over for parameters trained before and
  now; the newly trained start fresh (and the frozen now drop theirs)."""
  fresh = jax.jit(rs._create, out_shardings=rs.state_shardings)(state.params)
  opt_state, started = trainable.carry_over(fresh.opt_state, state.opt_state)
  log(f"optim.trainable changed at step {step} ({old_pattern!r} -> {rs.trainable_pattern!r}): "
      f"{started} optimizer state array(s) start fresh, the rest carry over")
  return dataclasses.replace(state, params=fresh.params, opt_state=opt_state)


def data_plan(cfg: ConfigDict, task) -> dict:
  """The config fields that decide which batch comes at which step (recorded in checkpoints): the
  common data section's and the stage's own (`Task.data_plan`)."""
  d = cfg.data
  return {"seed": cfg.seed, "tokens_per_step": d.tokens_per_step, "buckets": list(d.buckets),
          "bucket_weights": None if d.bucket_weights is None else list(d.bucket_weights),
          "eval_fraction": d.eval_fraction,
          "sources": {n: [s.get("format", "text"), float(s.get("weight", 1.0)), list(s.paths)]
                      for n, s in d.sources.items()},
          "mixture_schedule": [[int(step), dict(w)] for step, w in d.mixture_schedule], **task.data_plan}


def _plan_changes(old: dict | None, new: dict | None) -> list[str]:
  """'field: old -> new' for each data-plan field that differs."""
  if old is None or new is None:
    return []
  return [f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
          if old.get(k) != new.get(k)]


def run(cfg: ConfigDict, workdir: str, log=print, interrupts: Interrupts | None = None) -> RunResult:
  """Train `cfg` in `workdir`. `interrupts`: the caller's (a command line keeps one for its whole
  life); by default the run installs its own for its duration."""
  os.makedirs(workdir, exist_ok=True)
  own = interrupts is None
  interrupts = Interrupts() if own else interrupts
  lock = WorkdirLock(workdir, log)
  try:
    distributed.on_process_zero(lock.acquire, f"lock {workdir}")
    return _run(cfg, workdir, log, interrupts)
  finally:
    lock.release()
    if own:
      interrupts.restore()


def _train_item(state: TrainState) -> dict:
  """The checkpoint's `train` item: everything of the state but the parameters."""
  return {"opt_state": state.opt_state, "step": state.step, "bad_streak": state.bad_streak,
          "bad_total": state.bad_total, "extra": state.extra}


def _restore_or_init(cfg: ConfigDict, rs, ckpt, log) -> tuple[int, TrainState, Any]:
  """(start step, state, data iterator state or None): the newest readable checkpoint, put back
  on the run's course (trainable selection, data plan, the stage's own resume), or a fresh state."""

  def saved_train_item(meta: dict):
    """The optimizer layout a checkpoint was saved with (its optim.trainable may differ)."""
    same = meta.get("trainable", "") == rs.trainable_pattern
    return _train_item(rs.abstract_state if same else rs.abstract_train_state(meta.get("trainable", "")))

  restored = ckpt.restore_latest(rs.checkpointed(rs.abstract_state.params), saved_train_item,
                                 rs.model_cfg.to_dict())
  if restored is None:
    return 0, rs.init_state(log), None
  start, params, train, data_state, meta = restored
  if rs.lora_base is not None:  # the checkpoint holds the adapters; the base is rebuilt
    params = adapters.overlay(rs.init_state(log).params, params)
  state = TrainState(train["step"], params, train["opt_state"], train["bad_streak"],
                     train["bad_total"], train["extra"])
  log(f"resumed from {ckpt.directory}/{start}")
  if meta.get("trainable", "") != rs.trainable_pattern:
    state = _reselect(rs, state, meta.get("trainable", ""), start, log)
  if cfg.train.steps < start:
    raise ConfigError(f"train.steps={cfg.train.steps} is below step {start} of {ckpt.directory}; "
                      f"raise train.steps to train on, or use a new workdir")
  changes = _plan_changes(meta.get("data_plan"), data_plan(cfg, rs.task))
  if changes:
    log(f"data plan changed at step {start} ({'; '.join(changes)}): continuing with batch "
        f"{start} of the new plan")
  rs.task.resume(meta.get("stage_meta", {}), start, log)
  return start, state, data_state


def _evaluator(rs, eval_tasks: EvalTasks | None) -> Callable[[Any], dict[str, float]]:
  """params -> per eval set the stage's metrics from summed step outputs, `eval_loss` over all
  sets, and the benchmark tasks' accuracies."""
  task = rs.task

  def evaluate(params) -> dict[str, float]:
    out, nll, count = {}, 0.0, 0.0
    for name, batches in task.eval_sets.items():
      totals: dict[str, float] = {}
      for b in batches:
        sums = jax.device_get(rs.eval_step(params, rs.to_device(rs.local_rows(b))))
        for k, v in sums.items():
          totals[k] = totals.get(k, 0.0) + float(v)
      if totals.get("count"):
        out[f"eval/loss/{name}"] = totals["nll_sum"] / totals["count"]
        for k, v in task.summarize_eval(totals).items():
          out[f"eval/{k}/{name}"] = v
      nll, count = nll + totals.get("nll_sum", 0.0), count + totals.get("count", 0.0)
    if count:
      out["eval_loss"] = nll / count
    if eval_tasks is not None:
      out.update(eval_tasks(params))
    return out

  return evaluate


class MetricsWindow:
  """Steps since the last log line: their metrics are fetched from the device together, written
  with the window's tokens/s (and MFU), and checked for a run of non-finite steps."""

  def __init__(self, cfg: ConfigDict, task, writer: MetricsWriter, progress: Progress):
    self.cfg, self.task, self.writer, self.progress = cfg, task, writer, progress
    self.pending: list[tuple[int, int, int, dict]] = []  # (step, bucket, tokens, device metrics)
    self.start, self.last_loss = time.time(), None
    self.peak = cfg.train.peak_flops_per_device * jax.device_count()

  def add(self, step: int, bucket: int, tokens: int, metrics: dict) -> None:
    self.pending.append((step, bucket, tokens, metrics))

  def flush(self) -> None:
    if not self.pending:
      return
    pending, task = self.pending, self.task
    host = jax.device_get([m for *_, m in pending])
    tps = sum(t for _, _, t, _ in pending) / max(time.time() - self.start, 1e-9)
    for (step, bucket, n_tok, _), m in zip(pending, host):
      record = {**task.summarize(m), "bucket": bucket, "tokens_per_sec": tps, "row_tokens": n_tok}
      if self.peak:
        record["mfu"] = tps * task.flops_per_token(bucket) / self.peak
      self.writer.write(step, record)
      loss = float(m["loss"])
      if np.isfinite(loss):
        self.last_loss = loss
    extra = task.window.metrics() if task.window is not None else {}
    if extra:  # the stage's window metrics go with the window's last step
      self.writer.write(pending[-1][0], extra)
    latest = host[-1]
    self.progress.update(len(pending), loss=float(latest["loss"]), tok_s=f"{tps:,.0f}", bucket=pending[-1][1])
    streak = int(latest["bad_streak"])
    pending.clear()
    self.writer.flush()
    self.start = time.time()
    limit = self.cfg.train.max_bad_steps
    if streak >= limit:
      raise TrainingError(
          f"loss or gradients were not finite for {streak} steps in a row (train.max_bad_steps="
          f"{limit}); those updates were skipped. Last finite loss: {self.last_loss}. "
          f"Lower optim.lr, raise optim.warmup_steps or check the data")


def _run(cfg: ConfigDict, workdir: str, log, interrupts: Interrupts) -> RunResult:
  is_main = jax.process_index() == 0
  eval_task_splits = eval_splits(cfg, log)  # before data, weights or steps: a bad eval task stops here
  rs = setup(cfg, log, checkpoints=os.path.join(workdir, "checkpoints"))
  task, tok = rs.task, rs.tokenizer
  evaluate = _evaluator(rs, EvalTasks(eval_task_splits, rs) if eval_task_splits else None)
  if interrupts.agreed():
    log("stopped by a signal during setup; nothing was trained or saved")
    return RunResult(0, None, interrupts.signum)

  ckpt = layout.TrainCheckpointer(os.path.join(workdir, "checkpoints"), cfg.train.keep_checkpoints,
                                      cfg.train.keep_best, cfg.train.async_checkpointing, log)
  start, state, data_state = _restore_or_init(cfg, rs, ckpt, log)
  if is_main:
    dropped = truncate_metrics(workdir, start)
    if dropped:
      log(f"metrics.jsonl: dropped {dropped} record(s) past step {start}, written after that checkpoint")
  meta = {"model": rs.model_cfg.to_dict(), "kind": task.kind, "stage": task.name,
          "stage_meta": task.meta, "data_plan": data_plan(cfg, task), "trainable": rs.trainable_pattern,
          "lora_base": rs.lora_base, "config": json.loads(cfg.to_json_best_effort())}
  if is_main and tok.model_file:
    os.makedirs(ckpt.directory, exist_ok=True)
    shutil.copyfile(tok.model_file, os.path.join(ckpt.directory, layout.TOKENIZER_FILE))

  iterator = train_iterator(task.train_source, cfg.data.prefetch)
  if data_state is not None:
    iterator.set_state(data_state)
  writer = MetricsWriter(workdir, enabled=is_main, purge_step=start + 1)
  progress = Progress(cfg.train.steps, start, enabled=is_main)
  window = MetricsWindow(cfg, task, writer, progress)
  saved_step, last_eval, stopped = start, {}, None  # the newest held-out metrics travel in each save

  def save(step: int, metrics: dict | None = None, force: bool = False):
    nonlocal saved_step
    if step == saved_step:
      return
    ckpt.save(step, rs.checkpointed(state.params), _train_item(state), iterator.get_state(),
              dict(meta, last_eval=last_eval), metrics=metrics, force=force)
    saved_step = step

  step = start
  evaluating = bool(task.eval_sets) or eval_task_splits
  try:
    while step < cfg.train.steps:
      bucket = task.train_source.row_length(step)
      batch = next(iterator)
      if task.window is not None:
        task.window.add(batch)
      state, metrics = rs.train_step(state, rs.to_device(batch))
      step += 1
      window.add(step, bucket, task.tokens_in_batch(batch) * jax.process_count(), metrics)
      last = step == cfg.train.steps
      if step % cfg.train.log_every == 0 or last:
        window.flush()
      eval_metrics = None
      if evaluating and (step % cfg.train.eval_every == 0 or last):
        window.flush()
        eval_metrics = evaluate(state.params)
        last_eval = dict(eval_metrics, step=step)
        writer.write(step, eval_metrics)
        writer.flush()
        progress.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in eval_metrics.items()))
      if step % cfg.train.checkpoint_every == 0 or last:
        save(step, {"eval_loss": eval_metrics["eval_loss"]} if eval_metrics and "eval_loss" in eval_metrics
             else None)
      if interrupts.agreed() and not last:
        window.flush()
        save(step, force=True)
        ckpt.wait()
        progress.write(f"stopping on a signal: saved step {step} to {ckpt.directory}")
        stopped = interrupts.signum or signal.SIGTERM
        break
  finally:
    try:
      ckpt.wait()
    finally:
      ckpt.close()
      progress.close()
      writer.close()
      iterator.close()
  return RunResult(step, window.last_loss, stopped)
