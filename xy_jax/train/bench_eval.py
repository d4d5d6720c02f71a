"""Benchmark accuracy during training (`train.eval_tasks`): the evaluator of `tools/evaluate.py` run
on the live parameters (no copy), every `train.eval_every` steps, as `bench/<task>/acc` metrics."""

from __future__ import annotations

from typing import Any

from ml_collections import ConfigDict

from xy_jax.eval.run import EvalSpec, Evaluator
from xy_jax.models.model_config import ConfigError


def eval_specs(cfg: ConfigDict) -> list[EvalSpec]:
  specs = [EvalSpec.from_dict(dict(d), f"train.eval_tasks[{i}]") for i, d in enumerate(cfg.train.eval_tasks)]
  tasks = [s.task for s in specs]
  for t in tasks:
    if tasks.count(t) > 1:
      raise ConfigError(f"train.eval_tasks: {t!r} appears twice; one entry per benchmark")
  return specs


class BenchEval:
  """Built once per run (splits read and checked at start, programs compiled on first use)."""

  def __init__(self, specs: list[EvalSpec], rs: Any, log):
    if rs.task.kind != "causal_lm":
      raise ConfigError(f"train.eval_tasks: stage {rs.task.name!r} trains a {rs.task.kind} model, "
                        "which has no LM head to answer benchmark questions")
    self.specs = specs
    self.evaluator = Evaluator(rs.graphdef, rs.tokenizer, rs.sharding, rs.model_cfg.max_position_embeddings)
    for spec in specs:
      split = self.evaluator.split(spec)
      log(f"train.eval_tasks: {spec.task} {split.split}, {len(split.items)} items in "
          f"{len(split.subjects)} subjects ({spec.mode}, {spec.num_shots}-shot); "
          f"{split.report.summary()}")

  def __call__(self, params) -> dict[str, float]:
    out = {}
    for spec in self.specs:
      summary = self.evaluator.evaluate(params, spec).summary()
      out[f"bench/{spec.task}/acc"] = summary["accuracy"]
      for category, v in summary["per_category"].items():
        out[f"bench/{spec.task}/acc/{category}"] = v["accuracy"]
    return out
