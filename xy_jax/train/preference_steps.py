"""What the reward and DPO stages share: preference pairs read, split and served a step at a time."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from ml_collections import ConfigDict

from xy_jax.data.pipeline import eval_mask
from xy_jax.data.preference import Pairs, pair_batch, read_pairs
from xy_jax.data.sources import SkipReport, expand_paths
from xy_jax.data.step_source import ShuffledSteps
from xy_jax.data.tokenizer import ChatTemplate, Tokenizer
from xy_jax.errors import ConfigError
from xy_jax.train.task import check_rows


@dataclasses.dataclass(frozen=True)
class PairShape:
  """One step: `rows` rows of `length` tokens, a pair (chosen, rejected) per two rows."""
  length: int
  rows: int
  answer_mask: bool  # batches carry `loss_mask` over the answer tokens (DPO)

  @property
  def pairs(self) -> int:
    return self.rows // 2

  def plan_batches(self) -> dict:
    keys = ("tokens", "positions", "segment_ids") + (("loss_mask",) if self.answer_mask else ())
    return {f"pairs x {self.length}": {**{k: ((self.rows, self.length), "int32") for k in keys},
                                       "weight": ((self.rows,), "float32")}}


def pair_shape(cfg: ConfigDict, sharding, answer_mask: bool = False) -> PairShape:
  """The row length is the largest bucket; `data.tokens_per_step` decides the rows, checked here."""
  d = cfg.data
  length = max(d.buckets)
  rows = d.tokens_per_step // length
  if rows % 2:
    raise ConfigError(f"data.tokens_per_step={d.tokens_per_step}: {rows} rows per step; a pair "
                      "takes two, so it must be even")
  check_rows("data.tokens_per_step", d.tokens_per_step, rows, sharding, cfg.optim.grad_accum)
  check_rows("data.tokens_per_step", d.tokens_per_step, rows // 2, sharding, what="pairs")
  return PairShape(length, rows, answer_mask)


@dataclasses.dataclass
class PreferenceData:
  source: ShuffledSteps  # the training pairs, a step at a time
  eval_sets: dict[str, list[dict]]
  train: int
  held_out: int
  skipped: int

  def meta(self) -> dict:
    return {"train": self.train, "eval": self.held_out, "skipped": self.skipped}


def preference_data(cfg: ConfigDict, shape: PairShape, tok: Tokenizer, stage: str, log) -> PreferenceData:
  """Every `format: "preference"` source read (bad records counted and reported), split into
  training and held-out pairs by `data.eval_fraction`."""
  d = cfg.data
  template = ChatTemplate(system=cfg.sft.system)
  report = SkipReport()
  all_pairs = Pairs([], [], [])
  for name, src in d.sources.items():
    if src.get("format", "text") != "preference":
      raise ConfigError(f"data.sources.{name}.format: the {stage} stage reads format='preference'")
    field = f"data.sources.{name}.paths"
    files = expand_paths(list(src.paths), field)
    skipped = SkipReport()
    pairs = read_pairs(files, field, tok, template, shape.length, skipped)
    if not len(pairs):
      _log_skips(skipped, log)
      raise ConfigError(f"{field}: no usable preference pairs in {', '.join(files)} ({skipped.summary()})")
    all_pairs.extend(pairs)
    report.merge(skipped)
  _log_skips(report, log)
  held = eval_mask(len(all_pairs), d.eval_fraction, cfg.seed)
  train, held_out = all_pairs.subset(np.nonzero(~held)[0]), all_pairs.subset(np.nonzero(held)[0])
  if len(train) < shape.pairs:
    raise ConfigError(f"data.sources: {len(train)} training pairs, fewer than one step's "
                      f"{shape.pairs}; add data or lower data.tokens_per_step")
  source = ShuffledSteps(
      len(train), shape.pairs, cfg.seed, cfg.train.steps,
      lambda mine, step: pair_batch(train, mine, shape.length, tok.pad_id, answer_mask=shape.answer_mask),
      shape.length, jax.process_index(), jax.process_count())
  evals = held_out.eval_batches(shape.pairs, shape.length, tok.pad_id, shape.answer_mask)
  return PreferenceData(source, {"preference": evals} if evals else {}, len(train), len(held_out),
                        report.total)


def _log_skips(report: SkipReport, log) -> None:
  if report.total:
    log(f"preference data: {report.summary()}")
    for example in report.examples:
      log(f"  skipped {example}")
