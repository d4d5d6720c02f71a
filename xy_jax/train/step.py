"""The generic gradient step: micro-batch accumulation, optax update, non-finite skip.

A stage supplies `loss_sums(model, batch) -> {'nll_sum', 'z_sum', 'count', ...}`; the objective is
`(nll_sum + z_loss * z_sum) / count` over the whole global batch, so accumulating micro-batches
gives exactly the gradient of the full batch.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from xy_jax.models import lora
from xy_jax.sharding import LogicalSharding
from xy_jax.train import trainable
from xy_jax.train.state import TrainState

LossSums = Callable[[nnx.Module, dict[str, jax.Array]], dict[str, jax.Array]]


def split_microbatches(batch: dict[str, jax.Array], accum: int, sharding: LogicalSharding):
  """[rows, ...] -> [accum, rows/accum, ...]; micro-batch k takes rows k, k+accum, ... so every
  device keeps its own rows (no resharding)."""

  def split(x):
    x = x.reshape(x.shape[0] // accum, accum, *x.shape[1:]).swapaxes(0, 1)
    return sharding.constrain(x, (None, "act_batch") + (None,) * (x.ndim - 2))

  return jax.tree.map(split, batch)


def _combine(totals: dict, sums: dict) -> dict:
  """Accumulate one micro-batch's sums: keys ending in `_max` keep the maximum, the rest add."""
  return {k: jnp.maximum(totals[k], v) if k.endswith("_max") else totals[k] + v
          for k, v in sums.items()}


def make_train_step(graphdef: nnx.GraphDef, loss_sums: LossSums, tx: optax.GradientTransformation,
                    lr_schedule: optax.Schedule, accum: int, z_loss: float,
                    sharding: LogicalSharding, mask=None, advance: bool = True,
                    hold: Callable | None = None,
                    dropout_seed: int | None = None) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
  """`mask` (optim.trainable): gradients, optimizer state and updates cover the trainable
  parameters only; the frozen ones are inputs, never written.

  A learner that takes several updates per step (PPO) passes `advance=False`: the step counter and
  the non-finite counters are its to move, and the metrics carry `ok`. `hold(state, params)` may
  put parameters back after the update (PPO's critic warm-up keeps the actor still).
  `dropout_seed` (LoRA dropout): each micro-batch of each step gets its own dropout key.
  """

  def objective(train_params, frozen_params, micro, key):
    with lora.dropout_scope(key):
      sums = loss_sums(nnx.merge(graphdef, trainable.merge(train_params, frozen_params, mask)), micro)
    return sums["nll_sum"] + z_loss * sums["z_sum"], sums

  grad_fn = jax.value_and_grad(objective, has_aux=True)

  def step(state: TrainState, batch: dict[str, jax.Array]):
    micro = split_microbatches(batch, accum, sharding)
    train_params = trainable.trainable_part(state.params, mask)
    frozen_params = None if mask is None else trainable.frozen_part(state.params, mask)

    step_key = None if dropout_seed is None else jax.random.fold_in(jax.random.key(dropout_seed), state.step)

    def accumulate(carry, xs):
      grads, totals = carry
      mb, index = xs
      key = None if step_key is None else jax.random.fold_in(step_key, index)
      (_, sums), g = grad_fn(train_params, frozen_params, mb, key)
      return (jax.tree.map(jnp.add, grads, g), _combine(totals, sums)), None

    zeros = jax.tree.map(jnp.zeros_like, train_params)
    first = jax.eval_shape(lambda: grad_fn(train_params, frozen_params, jax.tree.map(lambda x: x[0], micro),
                                           step_key)[0][1])
    totals0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), first)
    (grads, totals), _ = jax.lax.scan(accumulate, (zeros, totals0), (micro, jnp.arange(accum)))
    count = jnp.maximum(totals["count"], 1.0)
    grads = jax.tree.map(lambda g: g / count, grads)
    loss = totals["nll_sum"] / count
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, train_params)
    params = trainable.merge(optax.apply_updates(train_params, updates), frozen_params, mask)
    if hold is not None:
      params = hold(state, params)

    ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
    new_state = TrainState(
        step=state.step + 1 if advance else state.step,
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
        bad_streak=jnp.where(ok, 0, state.bad_streak + 1) if advance else state.bad_streak,
        bad_total=state.bad_total + (~ok).astype(jnp.int32) if advance else state.bad_total,
        extra=state.extra)
    metrics = {"loss": loss, "grad_norm": grad_norm, "lr": lr_schedule(state.step),
               "tokens": totals["count"], "skipped": (~ok).astype(jnp.int32),
               "bad_streak": new_state.bad_streak}
    if not advance:
      metrics["ok"] = ok.astype(jnp.int32)
    if z_loss:
      metrics["z_loss"] = totals["z_sum"] / count
    for k, v in totals.items():  # stage-specific sums (e.g. SFT vs LM parts) pass through
      if k not in ("nll_sum", "z_sum", "count"):
        metrics[k] = v
    return new_state, metrics

  return step


def make_eval_step(graphdef: nnx.GraphDef, loss_sums: LossSums):
  def step(params, batch):
    return loss_sums(nnx.merge(graphdef, params), batch)

  return step
