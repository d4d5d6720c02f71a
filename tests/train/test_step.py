"""The generic train step: accumulation is exact, non-finite steps are skipped."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from xy_jax.config import base_config
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.sharding import LogicalSharding
from xy_jax.train.optim import optimizer, schedule
from xy_jax.train.losses import lm_loss
from xy_jax.train.state import TrainState
from xy_jax.train.step import make_train_step

CFG = get_preset("tiny")


def _setup(accum, lr=1e-3, tx=None):
  model = init_model(CausalLM, CFG, LogicalSharding(), seed=0)
  graphdef, state = nnx.split(model)
  o = base_config().optim
  o.lr, o.warmup_steps, o.grad_accum = lr, 0, accum
  adamw, lr_fn = optimizer(o, 10)
  tx = tx or adamw
  step = jax.jit(make_train_step(graphdef, lm_loss(0.0), tx, lr_fn, accum, 0.0, LogicalSharding()))
  return step, TrainState.create(nnx.to_pure_dict(state), tx)


def _batch(rows=8, length=32, seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones((rows, length), np.int32)
  mask[:, -1] = 0
  mask[::3, 20:] = 0  # uneven masks: accumulation must weight by token counts
  return {"tokens": jnp.asarray(rng.integers(4, CFG.vocab_size, (rows, length)), jnp.int32),
          "positions": jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (rows, length)),
          "segment_ids": jnp.ones((rows, length), jnp.int32), "loss_mask": jnp.asarray(mask)}


def test_gradient_accumulation_matches_one_big_batch():
  batch = _batch()
  sgd = optax.sgd(1.0)  # params - new params = the gradient itself
  step1, s1 = _setup(1, tx=sgd)
  step4, s4 = _setup(4, tx=sgd)
  before = jax.tree.map(np.asarray, s1.params)
  s1, m1 = step1(s1, batch)
  s4, m4 = step4(s4, batch)
  np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-6)
  np.testing.assert_allclose(m1["grad_norm"], m4["grad_norm"], rtol=1e-5)
  for p0, a, b in zip(jax.tree.leaves(before), jax.tree.leaves(s1.params), jax.tree.leaves(s4.params)):
    np.testing.assert_allclose(p0 - np.asarray(a), p0 - np.asarray(b), atol=1e-7, rtol=1e-4)


def test_non_finite_step_leaves_state_untouched():
  step, state = _setup(1)
  batch = _batch()
  poisoned = jax.tree.map(lambda x: x, state)
  poisoned.params["lm_head"]["weight"] = state.params["lm_head"]["weight"].at[0, 0].set(jnp.nan)
  new, m = step(poisoned, batch)
  assert int(m["skipped"]) == 1 and int(new.bad_streak) == 1 and int(new.step) == 1
  np.testing.assert_array_equal(np.asarray(new.opt_state[1][0].mu["lm_head"]["weight"]),
                                np.asarray(poisoned.opt_state[1][0].mu["lm_head"]["weight"]))
  ok, m2 = step(state, batch)
  assert int(m2["skipped"]) == 0 and int(ok.bad_streak) == 0


def test_schedule_warmup_then_cosine():
  o = ml_collections.ConfigDict({"lr": 1.0, "warmup_steps": 10, "min_lr_ratio": 0.1, "schedule": "cosine"})
  lr = schedule(o, 110)
  assert float(lr(0)) == 0.0 and abs(float(lr(10)) - 1.0) < 1e-6 and abs(float(lr(110)) - 0.1) < 1e-6
