"""DPO stage (Rafailov et al. 2023) and its IPO / hinge variants, on the reward model's pairs.

The policy starts from an SFT checkpoint; a frozen copy (the reference, bfloat16 by default) gives
log-probs once per batch, without gradients, before the gradient step. With h = (log pi(c) - log
pi(r)) - (log ref(c) - log ref(r)) summed over answer tokens, per pair:

  sigmoid: -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)   (eps: label smoothing)
  ipo:     (h - 1 / (2 beta))^2, on log-probs averaged over answer tokens (as TRL does)
  hinge:   max(0, 1 - beta h)

Metrics follow TRL's names: rewards/chosen = beta (log pi(c) - log ref(c)), rewards/rejected,
rewards/accuracies, rewards/margins, logps/chosen, logps/rejected.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from ml_collections import ConfigDict

from xy_jax.config import require
from xy_jax.data.tokenizer import Tokenizer
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.train.learner import StepContext, SupervisedLearner
from xy_jax.train.losses import next_token_nll
from xy_jax.train.step import make_eval_step
from xy_jax.train.preference_steps import pair_shape, preference_data
from xy_jax.train.task import Task
from xy_jax.weights import layout
from xy_jax.weights.cast import abstract_frozen, split_frozen
from xy_jax.weights.load import load_source
from xy_jax.weights.pins import Pins

LOSSES = ("sigmoid", "ipo", "hinge")
REFERENCE_FIELD = "dpo.reference_checkpoint"
METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
           "logps/rejected")


def validate_config(c: ConfigDict) -> None:
  dp = c.dpo
  require("dpo.loss", dp.loss in ("sigmoid", "ipo", "hinge"), f"{dp.loss!r}: sigmoid, ipo or hinge")
  require("dpo.beta", dp.beta > 0, f"{dp.beta}: must be > 0")
  require("dpo.label_smoothing", 0 <= dp.label_smoothing < 0.5 and (dp.label_smoothing == 0 or dp.loss == "sigmoid"),
          f"{dp.label_smoothing}: in [0, 0.5), and only with dpo.loss='sigmoid'")
  require("dpo.reference_dtype", dp.reference_dtype in ("float32", "bfloat16"), "float32 or bfloat16")


def answer_logps(model, batch) -> tuple[jax.Array, jax.Array]:
  """(summed log-prob of each row's answer tokens [rows], answer-token count [rows])."""
  logits, _ = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  nll, _ = next_token_nll(logits, batch["tokens"], batch["loss_mask"])
  return -jnp.sum(nll, axis=1), jnp.sum(batch["loss_mask"], axis=1).astype(jnp.float32)


def pair_losses(policy_c, policy_r, ref_c, ref_r, beta: float, loss: str, label_smoothing: float = 0.0):
  """Per-pair loss from sequence log-probs (already averaged per token for IPO)."""
  h = (policy_c - policy_r) - (ref_c - ref_r)
  if loss == "sigmoid":
    return -(1 - label_smoothing) * jax.nn.log_sigmoid(beta * h) - label_smoothing * jax.nn.log_sigmoid(-beta * h)
  if loss == "ipo":
    return jnp.square(h - 1.0 / (2.0 * beta))
  if loss == "hinge":
    return jax.nn.relu(1.0 - beta * h)
  raise ValueError(f"dpo.loss={loss!r}: one of {LOSSES}")


def make_loss_sums(beta: float, loss: str, label_smoothing: float):
  """(model, batch with `ref_logp`) -> sums over pairs (chosen at even rows, rejected at odd)."""

  def loss_sums(model, batch):
    logp, n = answer_logps(model, batch)
    ref = batch["ref_logp"]
    pc, pr = logp[0::2], logp[1::2]
    rc, rr = ref[0::2], ref[1::2]
    w = batch["weight"][0::2]
    if loss == "ipo":  # the loss on per-token averages (as TRL); the metrics on sums, as TRL reports them
      per = jnp.maximum(n, 1.0)
      losses = pair_losses(pc / per[0::2], pr / per[1::2], rc / per[0::2], rr / per[1::2], beta, loss)
    else:
      losses = pair_losses(pc, pr, rc, rr, beta, loss, label_smoothing)
    chosen, rejected = beta * jax.lax.stop_gradient(pc - rc), beta * jax.lax.stop_gradient(pr - rr)
    return {"nll_sum": jnp.sum(losses * w), "z_sum": jnp.zeros((), jnp.float32), "count": jnp.sum(w),
            "rewards/chosen_sum": jnp.sum(chosen * w), "rewards/rejected_sum": jnp.sum(rejected * w),
            "rewards/accuracies_sum": jnp.sum((chosen > rejected) * w),
            "rewards/margins_sum": jnp.sum((chosen - rejected) * w),
            "logps/chosen_sum": jnp.sum(jax.lax.stop_gradient(pc) * w),
            "logps/rejected_sum": jnp.sum(jax.lax.stop_gradient(pr) * w)}

  return loss_sums


def dpo_metrics(m: dict) -> dict:
  """Step sums -> TRL's per-pair means (step metrics carry the pair count as `tokens`)."""
  out = {k: v for k, v in m.items() if not k.endswith("_sum")}
  n = max(float(m["count"] if "count" in m else m["tokens"]), 1.0)
  out.update({k: float(m[f"{k}_sum"]) / n for k in METRICS})
  return out


def eval_dpo_metrics(totals: dict) -> dict:
  return {k: v for k, v in dpo_metrics(totals).items() if k in METRICS}


class DPOLearner(SupervisedLearner):
  """The supervised step, with the reference's log-probs added to each batch first."""
  # Two programs (reference, step): the planner reports the memory of each and the time of both.

  def __init__(self, loss_sums, reference: Callable[[Pins | None], tuple] | tuple):
    """`reference`: (graphdef, params), or a function of the run's pins loading them when first
    needed (at the first step)."""
    super().__init__(loss_sums)
    self._load_reference = reference if callable(reference) else (lambda pins: reference)
    self._reference = None
    self.reference = jax.jit(lambda params, batch: answer_logps(nnx.merge(self.ref_graph, params), batch)[0])

  def _loaded(self) -> tuple:
    if self._reference is None:
      self._reference = self._load_reference(self.pins)
    return self._reference

  @property
  def ref_graph(self):
    return self._loaded()[0]

  @property
  def ref_params(self):
    return self._loaded()[1]

  def build_step(self, ctx: StepContext):
    step = super().build_step(ctx)
    self._step = step

    def dpo_step(state, batch):
      return step(state, {**batch, "ref_logp": self.reference(self.ref_params, batch)})

    return dpo_step

  def build_eval_step(self, ctx: StepContext, loss_sums):
    evaluate = jax.jit(make_eval_step(ctx.graphdef, loss_sums))
    return lambda params, batch: evaluate(params, {**batch, "ref_logp": self.reference(self.ref_params, batch)})

  def programs(self, step, abstract_state, batch):
    ref = jax.eval_shape(self.reference, self.ref_params, batch)
    rows = batch["tokens"].sharding
    ref = jax.ShapeDtypeStruct(ref.shape, ref.dtype,
                               sharding=jax.sharding.NamedSharding(rows.mesh, jax.sharding.PartitionSpec(rows.spec[0])))
    return {"reference": lambda: self.reference.lower(self.ref_params, batch).compile(),
            "step": lambda: self._step.lower(abstract_state, {**batch, "ref_logp": ref}).compile()}


def _check_reference(kind: str, path: str) -> None:
  if kind != "causal_lm":
    raise ConfigError(f"dpo.reference_checkpoint: {path} holds a {kind} model, not a causal LM")


def build(cfg: ConfigDict, model_cfg: ModelConfig, tok: Tokenizer | None, sharding, log) -> Task:
  """`tok=None` builds the task for planning: the reference's shapes from the config."""
  p = cfg.dpo
  shape = pair_shape(cfg, sharding, answer_mask=True)
  ref_path = p.reference_checkpoint or cfg.init_from_checkpoint
  if tok is None:
    reference = abstract_frozen(CausalLM, model_cfg, sharding, p.reference_dtype)
  else:
    if not ref_path:
      raise ConfigError("dpo.reference_checkpoint: required (or init_from_checkpoint, its default: the "
                        "SFT checkpoint the policy starts from)")
    _check_reference(layout.load_meta(ref_path).get("kind", "causal_lm"), ref_path)

    def reference(pins):
      loaded = load_source(REFERENCE_FIELD, ref_path, sharding, pins, log, **model_cfg.numerics())
      _check_reference(loaded.kind, ref_path)
      log(f"dpo reference: {ref_path} (step {loaded.step}, held in {p.reference_dtype})")
      return split_frozen(loaded.model, p.reference_dtype)

  loss_sums = make_loss_sums(p.beta, p.loss, p.label_smoothing)
  task = Task(
      name="dpo", model_cls=CausalLM, kind="causal_lm", loss_sums=loss_sums, train_source=None,
      eval_sets={}, flops_per_token=lambda n: model_cfg.flops_per_token(n) * 4 / 3,  # + reference forward
      summarize=dpo_metrics, summarize_eval=eval_dpo_metrics,
      meta={"dpo": {"beta": p.beta, "loss": p.loss, "label_smoothing": p.label_smoothing,
                    "reference": ref_path}},
      summary=[], plan_batches=shape.plan_batches, learner=DPOLearner(loss_sums, reference))
  if tok is None:
    return task

  data = preference_data(cfg, shape, tok, "dpo", log)
  task.train_source, task.eval_sets = data.source, data.eval_sets
  task.meta["pairs"] = data.meta()
  task.summary = [f"dpo ({p.loss}, beta {p.beta}): {data.train} train pairs, {data.held_out} held out, "
                  f"{data.skipped} skipped; {shape.pairs} pairs per step at length {shape.length}"]
  return task
