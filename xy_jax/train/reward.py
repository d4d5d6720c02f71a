"""Reward-model stage on preference pairs: the pairwise loss -log sigmoid(r_chosen - r_rejected) on
the last token's score, or DeepSpeed-Chat's token-level contrastive loss (`reward.loss`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from xy_jax.config import require
from xy_jax.data.tokenizer import Tokenizer
from xy_jax.models.model_config import ModelConfig
from xy_jax.models.reward import RewardModel, sequence_scores
from xy_jax.train.preference_steps import pair_shape, preference_data
from xy_jax.train.task import Task


def pairwise_loss_sums(model, batch) -> dict[str, jax.Array]:
  values, _ = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  scores = sequence_scores(values, batch["segment_ids"]).reshape(-1, 2)
  chosen, rejected = scores[:, 0], scores[:, 1]
  w = batch["weight"].reshape(-1, 2)[:, 0]
  return {"nll_sum": jnp.sum(-jax.nn.log_sigmoid(chosen - rejected) * w), **_score_sums(chosen, rejected, w)}


def token_contrastive_loss_sums(values, tokens, segment_ids, weight) -> dict[str, jax.Array]:
  """DeepSpeed-Chat's token-level loss (XuanYuan-6B's reward model): per pair, the mean of
  -log sigmoid(v_chosen_t - v_rejected_t) from the first token where the two rows differ to the end
  of the longer one (values at the shorter one's padding included, as DeepSpeed-Chat does); identical
  rows compare their last position. Scores for accuracy are the values at each row's last token."""
  t = values.shape[1]
  v, tok, seg = values.reshape(-1, 2, t), tokens.reshape(-1, 2, t), segment_ids.reshape(-1, 2, t)
  w = weight.reshape(-1, 2)[:, 0]
  lengths = jnp.sum(seg > 0, axis=2)  # the first padding index of right-padded rows
  differ = tok[:, 0] != tok[:, 1]
  diverges = jnp.any(differ, axis=1)
  start = jnp.where(diverges, jnp.argmax(differ, axis=1), t - 1)
  end = jnp.where(diverges, jnp.max(lengths, axis=1), t)
  span = (jnp.arange(t)[None] >= start[:, None]) & (jnp.arange(t)[None] < end[:, None])
  per_token = -jax.nn.log_sigmoid(v[:, 0] - v[:, 1])
  per_pair = jnp.sum(per_token * span, axis=1) / jnp.maximum(jnp.sum(span, axis=1), 1)
  ends = jnp.maximum(jnp.where(diverges[:, None], lengths, lengths[:, :1]) - 1, 0)
  chosen = jnp.take_along_axis(v[:, 0], ends[:, :1], axis=1)[:, 0]
  rejected = jnp.take_along_axis(v[:, 1], ends[:, 1:], axis=1)[:, 0]
  return {"nll_sum": jnp.sum(per_pair * w), **_score_sums(chosen, rejected, w)}


def _score_sums(chosen, rejected, w) -> dict[str, jax.Array]:
  margin = chosen - rejected
  return {"z_sum": jnp.zeros(()), "count": jnp.sum(w), "correct_sum": jnp.sum((margin > 0) * w),
          "margin_sum": jnp.sum(margin * w), "chosen_sum": jnp.sum(chosen * w),
          "rejected_sum": jnp.sum(rejected * w), "score_sq_sum": jnp.sum((chosen ** 2 + rejected ** 2) * w)}


def make_loss_sums(loss: str):
  """reward.loss: "last_token" (pairwise on the final scores) or "token_contrastive"."""
  if loss == "last_token":
    return pairwise_loss_sums

  def token_contrastive(model, batch):
    values, _ = model(batch["tokens"], batch["positions"], batch["segment_ids"])
    return token_contrastive_loss_sums(values, batch["tokens"], batch["segment_ids"], batch["weight"])

  return token_contrastive


def pair_metrics(m: dict) -> dict:
  """Sums -> accuracy, mean margin, mean chosen/rejected scores."""
  out = {k: v for k, v in m.items() if not k.endswith("_sum")}
  n = max(float(m["count"] if "count" in m else m["tokens"]), 1.0)  # eval totals | step metrics
  out.update(accuracy=float(m["correct_sum"]) / n, margin=float(m["margin_sum"]) / n,
             chosen_score=float(m["chosen_sum"]) / n, rejected_score=float(m["rejected_sum"]) / n)
  return out


def eval_pair_metrics(totals: dict) -> dict:
  out = pair_metrics(totals)
  n = max(totals["count"], 1.0)
  mean = (totals["chosen_sum"] + totals["rejected_sum"]) / (2 * n)
  out["score_std"] = float(np.sqrt(max(totals["score_sq_sum"] / (2 * n) - mean ** 2, 0.0)))
  out["score_mean"] = mean
  return {k: out[k] for k in ("accuracy", "margin", "chosen_score", "rejected_score", "score_mean",
                              "score_std")}


def validate_config(c: ConfigDict) -> None:
  require("reward.loss", c.reward.loss in ("last_token", "token_contrastive"),
          f"{c.reward.loss!r}: last_token or token_contrastive")


def build(cfg: ConfigDict, model_cfg: ModelConfig, tok: Tokenizer | None, sharding, log) -> Task:
  shape = pair_shape(cfg, sharding)
  task = Task(
      name="reward", model_cls=RewardModel, kind="reward", loss_sums=make_loss_sums(cfg.reward.loss),
      train_source=None, eval_sets={}, flops_per_token=lambda n: model_cfg.flops_per_token(n),
      summarize=pair_metrics, summarize_eval=eval_pair_metrics, meta={}, summary=[],
      plan_batches=shape.plan_batches)
  if tok is None:
    return task
  data = preference_data(cfg, shape, tok, "reward", log)
  task.train_source, task.eval_sets = data.source, data.eval_sets
  task.meta = {"pairs": data.meta()}
  task.summary = [f"preference pairs: {data.train} train, {data.held_out} held out, "
                  f"{data.skipped} skipped; {shape.pairs} pairs per step at length {shape.length}"]
  return task
