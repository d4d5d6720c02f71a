"""Benchmark accuracy during training (`train.eval_tasks`): the evaluator of `tools/evaluate.py` run
on the live parameters (no copy), every `train.eval_every` steps, as `bench/<task>/acc` metrics.
Every task's split is read and checked before the run sets up (`eval_splits`): a bad name, folder,
file or a shot count larger than the dev split stops it before any data, weights or step."""

from __future__ import annotations

from typing import Any

from ml_collections import ConfigDict

from xy_jax.eval.run import EvalSpec, Evaluator, check_fits, read_split
from xy_jax.eval.tasks import Split
from xy_jax.errors import ConfigError


def eval_specs(cfg: ConfigDict) -> list[EvalSpec]:
  for i, d in enumerate(cfg.train.eval_tasks):
    if not isinstance(d, (dict, ConfigDict)):
      raise ConfigError(f"train.eval_tasks[{i}]: {d!r}: a dict of evaluate.py fields")
  specs = [EvalSpec.from_dict(dict(d), f"train.eval_tasks[{i}]") for i, d in enumerate(cfg.train.eval_tasks)]
  for i, s in enumerate(specs):
    if s.task in (t.task for t in specs[:i]):
      raise ConfigError(f"train.eval_tasks[{i}].task={s.task!r}: already evaluated by an earlier entry; "
                        "one entry per benchmark")
  return specs


def eval_splits(cfg: ConfigDict, log) -> dict[EvalSpec, Split]:
  """Each eval task's split, read and checked; what was skipped is logged."""
  out = {}
  for i, spec in enumerate(eval_specs(cfg)):
    split = read_split(spec, f"train.eval_tasks[{i}]")
    log(f"train.eval_tasks: {spec.task} {split.split}, {len(split.items)} items in "
        f"{len(split.subjects)} subjects ({spec.mode}, {spec.num_shots}-shot); {split.report.summary()}")
    for example in split.report.examples:
      log(f"  skipped {example}")
    out[spec] = split
  return out


class EvalTasks:
  """Built once per run from `eval_splits`; programs compiled on first use."""

  def __init__(self, splits: dict[EvalSpec, Split], rs: Any):
    if rs.task.kind != "causal_lm":
      raise ConfigError(f"train.eval_tasks: stage {rs.task.name!r} trains a {rs.task.kind} model, "
                        "which has no LM head to answer benchmark questions")
    for i, spec in enumerate(splits):
      check_fits(spec, rs.model_cfg.max_position_embeddings, f"train.eval_tasks[{i}]")
    self.splits, self.rs = splits, rs
    self.evaluator = None

  def __call__(self, params) -> dict[str, float]:
    if self.evaluator is None:  # here, not at start: the starting weights may set the model config
      rs = self.rs
      self.evaluator = Evaluator(rs.graphdef, rs.tokenizer, rs.sharding, rs.model_cfg.max_position_embeddings,
                                 splits=self.splits)
    out = {}
    for spec in self.splits:
      summary = self.evaluator.evaluate(params, spec).summary()
      out[f"bench/{spec.task}/acc"] = summary["accuracy"]
      for category, v in summary["per_category"].items():
        out[f"bench/{spec.task}/acc/{category}"] = v["accuracy"]
    return out
