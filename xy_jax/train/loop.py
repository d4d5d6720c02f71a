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

import jax
import numpy as np
from ml_collections import ConfigDict

from xy_jax import checkpoint, distributed
from xy_jax.data.pipeline import resumed_schedule, train_iterator
from xy_jax.errors import ConfigError, TrainingError
from xy_jax.train import adapters, trainable
from xy_jax.train.eval_tasks import EvalTasks, eval_splits
from xy_jax.train.interrupts import Interrupts
from xy_jax.train.metrics import MetricsWriter, Progress
from xy_jax.train.setup import setup
from xy_jax.train.state import TrainState
from xy_jax.train.workdir import WorkdirLock, truncate_metrics


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


def data_plan(cfg: ConfigDict) -> dict:
  """The config fields that decide which batch comes at which step (recorded in checkpoints)."""
  d = cfg.data
  plan = {"seed": cfg.seed, "tokens_per_step": d.tokens_per_step, "buckets": list(d.buckets),
          "bucket_weights": None if d.bucket_weights is None else list(d.bucket_weights),
          "eval_fraction": d.eval_fraction,
          "sources": {n: [s.get("format", "text"), float(s.get("weight", 1.0)), list(s.paths)]
                      for n, s in d.sources.items()},
          "mixture_schedule": [[int(step), dict(w)] for step, w in d.mixture_schedule]}
  if cfg.stage == "ppo":
    plan["prompts_per_step"] = cfg.ppo.prompts_per_step
  return plan


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


def _run(cfg: ConfigDict, workdir: str, log, interrupts: Interrupts) -> RunResult:
  is_main = jax.process_index() == 0
  bench_splits = eval_splits(cfg, log)  # before data, weights or steps: a bad eval task stops here
  rs = setup(cfg, log)
  bench = EvalTasks(bench_splits, rs) if bench_splits else None
  task, tok = rs.task, rs.tokenizer
  if interrupts.agreed():
    log("stopped by a signal during setup; nothing was trained or saved")
    return RunResult(0, None, interrupts.signum)

  # --- restore or create -----------------------------------------------------------------------
  ckpt = checkpoint.TrainCheckpointer(os.path.join(workdir, "checkpoints"), cfg.train.keep_checkpoints,
                                      cfg.train.keep_best, cfg.train.async_checkpointing, log)
  train_item = lambda s: {"opt_state": s.opt_state, "step": s.step,  # noqa: E731
                          "bad_streak": s.bad_streak, "bad_total": s.bad_total, "extra": s.extra}

  def saved_train_item(meta: dict):
    """The optimizer layout a checkpoint was saved with (its optim.trainable may differ)."""
    pattern = meta.get("trainable", "")
    same = pattern == rs.trainable_pattern
    return train_item(rs.abstract_state if same else rs.abstract_train_state(pattern))

  restored = ckpt.restore_latest(rs.checkpointed(rs.abstract_state.params), saved_train_item,
                                 rs.model_cfg.to_dict())
  data_state = None
  if restored is not None:
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
    changes = _plan_changes(meta.get("data_plan"), data_plan(cfg))
    if changes:
      log(f"data plan changed at step {start} ({'; '.join(changes)}): continuing with batch "
          f"{start} of the new plan")
    recorded = meta.get("stage_meta", {}).get("mixture_schedule")
    if recorded and hasattr(task.train_source, "reschedule"):
      schedule = resumed_schedule(recorded, task.meta["mixture_schedule"], start)
      task.train_source.reschedule(schedule)
      task.meta["mixture_schedule"] = schedule
  else:
    start = 0
    state = rs.init_state(log)
  if is_main:
    dropped = truncate_metrics(workdir, start)
    if dropped:
      log(f"metrics.jsonl: dropped {dropped} record(s) past step {start}, written after that checkpoint")

  def evaluate() -> dict[str, float]:
    """Per eval set: the stage's metrics from summed step outputs; `eval_loss` over all sets."""
    out, nll, count = {}, 0.0, 0.0
    for name, batches in task.eval_sets.items():
      totals: dict[str, float] = {}
      for b in batches:
        sums = jax.device_get(rs.eval_step(state.params, rs.to_device(rs.local_rows(b))))
        for k, v in sums.items():
          totals[k] = totals.get(k, 0.0) + float(v)
      if totals.get("count"):
        out[f"eval/loss/{name}"] = totals["nll_sum"] / totals["count"]
        for k, v in task.summarize_eval(totals).items():
          out[f"eval/{k}/{name}"] = v
      nll, count = nll + totals.get("nll_sum", 0.0), count + totals.get("count", 0.0)
    if count:
      out["eval_loss"] = nll / count
    if bench is not None:
      out.update(bench(state.params))
    return out

  meta = {"model": rs.model_cfg.to_dict(), "kind": task.kind, "stage": task.name,
          "stage_meta": task.meta, "data_plan": data_plan(cfg), "trainable": rs.trainable_pattern,
          "lora_base": rs.lora_base,
          "config": json.loads(cfg.to_json_best_effort())}
  if is_main and tok.model_file:

    os.makedirs(ckpt.directory, exist_ok=True)
    shutil.copyfile(tok.model_file, os.path.join(ckpt.directory, checkpoint.TOKENIZER_FILE))

  # --- the loop --------------------------------------------------------------------------------
  iterator = train_iterator(task.train_source, cfg.data.prefetch)
  if data_state is not None:
    iterator.set_state(data_state)
  writer = MetricsWriter(workdir, enabled=is_main, purge_step=start + 1)
  progress = Progress(cfg.train.steps, start, enabled=is_main)
  pending: list[tuple[int, int, int, dict]] = []  # (step, bucket, tokens processed, device metrics)
  names = list(task.meta.get("mixture", {}))
  mix = np.zeros(len(names))  # tokens per source in this log window (process 0's rows)
  window_start, last_loss, stopped = time.time(), None, None
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
      record = {**task.summarize(m), "bucket": bucket, "tokens_per_sec": tps, "row_tokens": n_tok}
      if peak:
        record["mfu"] = tps * task.flops_per_token(bucket) / peak
      writer.write(step, record)
      loss = float(m["loss"])
      if np.isfinite(loss):
        last_loss = loss
    if mix.sum():  # the realised mixture of the window, with its last step's record
      writer.write(pending[-1][0], {f"mix/{n}": float(v) for n, v in zip(names, mix / mix.sum())})
      mix[:] = 0
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
    ckpt.save(step, rs.checkpointed(state.params), train_item(state), iterator.get_state(),
              dict(meta, last_eval=last_eval), metrics=metrics, force=force)
    saved_step = step

  step = start
  try:
    while step < cfg.train.steps:
      bucket = task.train_source.row_length(step)
      batch = next(iterator)
      row_tokens = task.tokens_in_batch(batch) * jax.process_count()
      if names and "source" in batch and "segment_ids" in batch:
        real = batch["source"] >= 0  # filler rows (no source) carry no tokens
        np.add.at(mix, batch["source"][real], (batch["segment_ids"][real] > 0).sum(axis=1))
      state, metrics = rs.train_step(state, rs.to_device(batch))
      step += 1
      pending.append((step, bucket, row_tokens, metrics))
      last = step == cfg.train.steps
      if step % cfg.train.log_every == 0 or last:
        flush_metrics()
      eval_metrics = None
      if (task.eval_sets or bench) and (step % cfg.train.eval_every == 0 or last):
        flush_metrics()
        eval_metrics = evaluate()
        last_eval = dict(eval_metrics, step=step)
        writer.write(step, eval_metrics)
        writer.flush()
        progress.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in eval_metrics.items()))
      if step % cfg.train.checkpoint_every == 0 or last:
        save(step, {"eval_loss": eval_metrics["eval_loss"]} if eval_metrics and "eval_loss" in eval_metrics
             else None)
      if interrupts.agreed() and not last:
        flush_metrics()
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
  return RunResult(step, last_loss, stopped)
