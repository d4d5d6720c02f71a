"""Pretraining stage: bucketed packed rows from a weighted mixture of sources, next-token loss."""

from __future__ import annotations

import os

import jax
from ml_collections import ConfigDict

from xy_jax.data.buckets import bucket_table
from xy_jax.data.pipeline import EpochPlanner, SourceRows, StepBatches, eval_batches
from xy_jax.data.prepared import PreparedSource, file_digest, prepare_source
from xy_jax.data.tokenizer import Tokenizer
from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import ConfigError, ModelConfig
from xy_jax.train.losses import lm_loss_sums
from xy_jax.train.stage import Stage


def lm_loss(z_loss: float):
  def loss_sums(model, batch):
    logits, _ = model(batch["tokens"], batch["positions"], batch["segment_ids"])
    return lm_loss_sums(logits, batch["tokens"], batch["loss_mask"], z_loss)

  return loss_sums


def open_sources(cfg: ConfigDict, tok: Tokenizer, log) -> list[PreparedSource]:
  """Prepared sources; tokenizes missing ones first when `data.auto_prepare` (process 0 writes)."""
  d = cfg.data
  digest = file_digest(tok.model_file)
  out = []
  for name, src in d.sources.items():
    meta_path = os.path.join(d.prepared_dir, name, "meta.json")
    if not os.path.isfile(meta_path):
      if not d.auto_prepare:
        raise ConfigError(f"data.sources.{name}: {meta_path} not found; run "
                          f"`python tools/prepare_data.py --config ...` or set data.auto_prepare=True")
      if jax.process_index() == 0:
        meta = prepare_source(name, list(src.paths), d.prepared_dir, tok)
        log(f"prepared source {name}: {meta['n_docs']} docs, {meta['n_tokens']} tokens; "
            f"skipped {sum(meta['skipped'].values())}")
        for example in meta["skipped_examples"]:
          log(f"  skipped {example}")
      if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"prepare {name}")
    source = PreparedSource.open(d.prepared_dir, name)
    if source.meta["tokenizer"] != digest:
      raise ConfigError(f"data.sources.{name}: {d.prepared_dir}/{name} was tokenized with another "
                        f"tokenizer; delete it and prepare again")
    out.append(source)
  return out


def build(cfg: ConfigDict, model_cfg: ModelConfig, tok: Tokenizer, dp_size: int, log) -> Stage:
  d = cfg.data
  buckets = tuple(sorted(d.buckets))
  sources = open_sources(cfg, tok, log)
  names = list(d.sources.keys())
  weights = [float(d.sources[n].get("weight", 1.0)) for n in names]
  train_rows = [SourceRows(s, buckets, "train", d.eval_fraction, cfg.seed) for s in sources]
  for b in buckets:
    rows = d.tokens_per_step // b
    if rows % (dp_size * cfg.optim.grad_accum) or rows % jax.process_count():
      raise ConfigError(
          f"data.tokens_per_step={d.tokens_per_step}: bucket {b} gives {rows} rows per step, not "
          f"divisible by data-parallel size {dp_size} x optim.grad_accum={cfg.optim.grad_accum} "
          f"(and by {jax.process_count()} processes)")
  planner = EpochPlanner(train_rows, weights, buckets, d.tokens_per_step, cfg.seed,
                         None if d.bucket_weights is None else list(d.bucket_weights))
  source = StepBatches(planner, tok.pad_id, cfg.train.steps, jax.process_index(), jax.process_count())

  eval_len = d.eval_length or buckets[0]
  eval_rows = [SourceRows(s, (eval_len,), "eval", d.eval_fraction, cfg.seed) for s in sources]
  per_batch = max(dp_size, (d.tokens_per_step // eval_len) // dp_size * dp_size)
  evals = eval_batches(eval_rows, eval_len, per_batch, d.eval_rows, tok.pad_id) if d.eval_fraction else {}
  evals = {k: v for k, v in evals.items() if v}

  summary = []
  for name, w, rows in zip(names, weights, train_rows):
    table = bucket_table(rows.packed)
    cells = ", ".join(f"{r['bucket']}: {r['rows']} rows ({r['padding']:.1%} pad)" for r in table
                      if r["rows"])
    summary.append(f"source {name} (weight {w / sum(weights):.2f}, {rows.source.num_docs} docs): {cells}")
  return Stage(
      name="pretrain", model_cls=CausalLM, kind="causal_lm", loss_sums=lm_loss(cfg.optim.z_loss),
      train_source=source, eval_sets=evals,
      flops_per_token=lambda length: model_cfg.flops_per_token(length),
      meta={"mixture": dict(zip(names, weights)), "buckets": list(buckets)}, summary=summary)
