"""Pretraining and SFT stages: bucketed packed rows from a weighted mixture of sources.

Pretraining sources are plain text; SFT sources (`format: "sft"`) are conversations whose loss
falls on the answers only. Mixing both in one config is the seeds' "mixed fine-tuning": the
weights set each side's share of tokens, and their losses are reported separately.
"""

from __future__ import annotations

import jax
import numpy as np
from ml_collections import ConfigDict

from xy_jax import distributed
from xy_jax.data.buckets import bucket_table
from xy_jax.data.pipeline import ScheduledPlanner, SourceRows, StepBatches, eval_batches, resumed_schedule
from xy_jax.data.prepared import PreparedSource, file_digest, prepare_source, stale_reason
from xy_jax.data.sft import prepare_sft_source, sft_settings
from xy_jax.data.sources import expand_paths
from xy_jax.data.tokenizer import ChatTemplate, Tokenizer
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.train.losses import lm_loss
from xy_jax.train.task import Task, check_rows


def split_losses(m: dict) -> dict:
  """Turn the SFT/LM sums into the two reported losses."""
  out = {k: v for k, v in m.items() if not k.startswith(("sft_", "lm_"))}
  for part in ("sft", "lm"):
    if f"{part}_count" in m and float(m[f"{part}_count"]) > 0:
      out[f"{part}_loss"] = float(m[f"{part}_nll_sum"]) / float(m[f"{part}_count"])
  return out


def _source_settings(cfg: ConfigDict, name: str) -> dict:
  if cfg.data.sources[name].get("format", "text") == "sft":
    return sft_settings(ChatTemplate(system=cfg.sft.system), max(cfg.data.buckets), cfg.sft.truncation,
                        cfg.data.dedup_prompts)
  return {"format": "text"}


def prepare_configured_source(cfg: ConfigDict, name: str, tok: Tokenizer) -> dict:
  """Tokenize one configured source into `data.prepared_dir` (plain text or SFT conversations)."""
  src = cfg.data.sources[name]
  if src.get("format", "text") == "sft":
    template = ChatTemplate(system=cfg.sft.system)
    return prepare_sft_source(name, list(src.paths), cfg.data.prepared_dir, tok, template,
                              max(cfg.data.buckets), cfg.sft.truncation, cfg.data.dedup_prompts)
  return prepare_source(name, list(src.paths), cfg.data.prepared_dir, tok)


def open_sources(cfg: ConfigDict, tok: Tokenizer, log, names: list[str] | None = None) -> list[PreparedSource]:
  """Prepared sources (`names`, default all of data.sources), checked against their input files,
  tokenizer and settings. A missing or stale one is (re-)tokenized when `data.auto_prepare`
  (process 0 writes), else refused."""
  d = cfg.data
  digest = file_digest(tok.model_file)
  out = []
  for name in d.sources if names is None else names:
    src = d.sources[name]

    def check_or_prepare(name=name, src=src):
      files = expand_paths(list(src.paths), f"data.sources.{name}.paths")
      reason = stale_reason(d.prepared_dir, name, files, digest, _source_settings(cfg, name))
      if reason and not d.auto_prepare:
        raise ConfigError(f"data.sources.{name}: {reason}; run `python tools/prepare_data.py "
                          f"--config ...` or set data.auto_prepare=True")
      if reason:
        log(f"data.sources.{name}: {reason}; preparing it")
        meta = prepare_configured_source(cfg, name, tok)
        log(f"prepared source {name}: {meta['n_docs']} docs, {meta['n_tokens']} tokens; "
            f"skipped {sum(meta['skipped'].values())}"
            + (f"; truncation {meta['truncation']}" if meta.get("truncation") else ""))
        for example in meta["skipped_examples"]:
          log(f"  skipped {example}")

    distributed.on_process_zero(check_or_prepare, f"prepare data.sources.{name}")
    out.append(PreparedSource.open(d.prepared_dir, name))
  return out


def mixture_schedule(cfg: ConfigDict) -> list[list]:
  """[[first step, {source: weight}], ...]: `data.mixture_schedule`, with the sources' own weights
  before its first step (and as the whole schedule when it is empty)."""
  base = {n: float(s.get("weight", 1.0)) for n, s in cfg.data.sources.items()}
  schedule = [[int(step), {n: float(w) for n, w in dict(weights).items()}]
              for step, weights in cfg.data.mixture_schedule]
  if not schedule or schedule[0][0] > 0:
    schedule.insert(0, [0, base])
  return schedule


def plan_batches(cfg: ConfigDict) -> dict[str, dict[str, tuple]]:
  """Per bucket: the global batch's shapes and dtypes (for AOT planning without data)."""
  out = {}
  for b in sorted(cfg.data.buckets):
    rows = cfg.data.tokens_per_step // b
    out[f"bucket {b}"] = {k: ((rows, b), "int32") for k in ("tokens", "positions", "segment_ids",
                                                            "loss_mask")}
    out[f"bucket {b}"]["source"] = ((rows,), "int32")
  return out


class MixtureWindow:
  """The realised mixture of a log window (`mix/<source>`): the share of tokens each source had in
  the rows this process fed (filler rows, source -1, carry none)."""

  def __init__(self, names: list[str]):
    self.names, self.tokens = names, np.zeros(len(names))

  def add(self, batch: dict) -> None:
    if "source" in batch and "segment_ids" in batch:
      real = batch["source"] >= 0
      np.add.at(self.tokens, batch["source"][real], (batch["segment_ids"][real] > 0).sum(axis=1))

  def metrics(self) -> dict:
    total = self.tokens.sum()
    out = {f"mix/{n}": float(v / total) for n, v in zip(self.names, self.tokens)} if total else {}
    self.tokens[:] = 0
    return out


def resume_schedule(task: Task, stage_meta: dict, step: int, log) -> None:
  """A resume follows the recorded schedule up to `step`, the configured one after it."""
  recorded = stage_meta.get("mixture_schedule")
  if recorded:
    schedule = resumed_schedule(recorded, task.meta["mixture_schedule"], step)
    task.train_source.reschedule(schedule)
    task.meta["mixture_schedule"] = schedule


def build(cfg: ConfigDict, model_cfg: ModelConfig, tok: Tokenizer | None, sharding, log) -> Task:
  """`tok=None` builds the stage without data (for planning): no sources are read."""
  dp_size = sharding.data_parallel_size
  d = cfg.data
  buckets = tuple(sorted(d.buckets))
  names = list(d.sources.keys())
  weights = [float(d.sources[n].get("weight", 1.0)) for n in names]
  sft_sources = tuple(i for i, n in enumerate(names) if d.sources[n].get("format", "text") == "sft")
  if cfg.stage == "sft" and not sft_sources:
    raise ConfigError("data.sources: stage 'sft' needs at least one source with format='sft'")
  task = Task(
      name=cfg.stage, model_cls=CausalLM, kind="causal_lm",
      loss_sums=lm_loss(cfg.optim.z_loss, sft_sources), summarize=split_losses,
      train_source=None, eval_sets={}, flops_per_token=lambda length: model_cfg.flops_per_token(length),
      meta={"mixture": dict(zip(names, weights)), "buckets": list(buckets),
            "mixture_schedule": mixture_schedule(cfg)}, summary=[],
      plan_batches=lambda: plan_batches(cfg))
  if tok is None:
    return task
  for i, (step, _) in enumerate(d.mixture_schedule):
    if step >= cfg.train.steps:
      log(f"data.mixture_schedule[{i}]: step {step} is not reached (train.steps={cfg.train.steps}); "
          "its weights apply only if a resume raises train.steps past it")
  sources = open_sources(cfg, tok, log)
  train_rows = [SourceRows(s, buckets, "train", d.eval_fraction, cfg.seed) for s in sources]
  for b in buckets:
    check_rows("data.tokens_per_step", d.tokens_per_step, d.tokens_per_step // b, sharding,
               cfg.optim.grad_accum, what=f"rows of bucket {b}")
  planner = ScheduledPlanner(train_rows, names, mixture_schedule(cfg), buckets, d.tokens_per_step,
                             cfg.seed, None if d.bucket_weights is None else list(d.bucket_weights))
  for start in planner.starts:  # plans each segment's first epoch: a plan with no batch stops here
    planner.step(start)
  source = StepBatches(planner, tok.pad_id, cfg.train.steps, jax.process_index(), jax.process_count())

  eval_len = d.eval_length or buckets[0]
  eval_rows = [SourceRows(s, (eval_len,), "eval", d.eval_fraction, cfg.seed) for s in sources]
  per_batch = max(dp_size, (d.tokens_per_step // eval_len) // dp_size * dp_size)
  evals = eval_batches(eval_rows, eval_len, per_batch, d.eval_rows, tok.pad_id) if d.eval_fraction else {}
  evals = {k: v for k, v in evals.items() if v}

  for name, w, rows in zip(names, weights, train_rows):
    table = bucket_table(rows.packed)
    cells = ", ".join(f"{r['bucket']}: {r['rows']} rows ({r['padding']:.1%} pad)" for r in table
                      if r["rows"])
    task.summary.append(f"source {name} (weight {w / sum(weights):.2f}, {rows.source.num_docs} docs): "
                         f"{cells}")
  task.train_source, task.eval_sets = source, evals
  task.window = MixtureWindow(names)
  task.resume = lambda stage_meta, step, log: resume_schedule(task, stage_meta, step, log)
  return task
