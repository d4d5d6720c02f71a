"""One optimizer builder for every stage: decay on matrices only, per-group learning rates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from xy_jax.config import base_config
from xy_jax.train.optim import optimizer


def _optim(**over):
  o = ConfigDict(base_config().optim.to_dict())
  o.update(schedule="constant", warmup_steps=0, weight_decay=0.1, clip_norm=0.0, **over)
  return o


def _params():
  layer = {"input_layernorm": {"weight": jnp.ones((4,))}, "q_proj": {"weight": jnp.ones((4, 4))}}
  return {"model": {"layers": layer, "norm": {"weight": jnp.ones((4,))}}}


def _step(tx, params):
  zero = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zero, tx.init(params), params)
  return optax.apply_updates(params, updates)


def test_weight_decay_skips_norms():
  tx, _ = optimizer(_optim(lr=0.5), 10)
  after = _step(tx, _params())
  assert np.all(after["model"]["norm"]["weight"] == 1.0)
  assert np.all(after["model"]["layers"]["input_layernorm"]["weight"] == 1.0)
  np.testing.assert_allclose(after["model"]["layers"]["q_proj"]["weight"], 1.0 - 0.5 * 0.1, rtol=1e-6)


def test_groups_have_their_own_rates_and_the_same_decay_mask():
  """PPO's actor and critic: before the shared builder, PPO's AdamW decayed norm weights."""
  params = {"actor": _params(), "critic": _params()}
  tx, lr = optimizer(_optim(), 10, groups={"actor": 0.5, "critic": 0.2})
  after = _step(tx, params)
  assert float(lr(0)) == 0.5  # the first group's schedule
  for group, rate in (("actor", 0.5), ("critic", 0.2)):
    assert np.all(after[group]["model"]["norm"]["weight"] == 1.0)
    np.testing.assert_allclose(after[group]["model"]["layers"]["q_proj"]["weight"], 1.0 - rate * 0.1,
                               rtol=1e-6)
