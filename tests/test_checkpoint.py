"""Checkpoints: a damaged step is moved aside (trainer) or skipped (readers); a step that does not
fit the config is a config error and nothing is moved."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xy_jax.weights import layout
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.weights.load import load_checkpoint
from xy_jax.errors import ConfigError
from xy_jax.models.presets import get_preset

MODEL = {"hidden_size": 8, "num_hidden_layers": 1}


def _train_item(value: float, n: int = 3):
  return {"opt_state": {"mu": jnp.full((n,), value)}, "step": jnp.asarray(int(value), jnp.int32)}


def _abstract(tree):
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def _save_steps(directory, steps, n=3):
  ckpt = layout.TrainCheckpointer(directory, keep=10, keep_best=False, async_save=False, log=print)
  for s in steps:
    ckpt.save(s, {"w": jnp.full((n, 2), float(s))}, _train_item(s, n), {"next_index": s},
              {"model": MODEL})
  ckpt.wait()
  ckpt.close()


def _damage(step_dir):
  """Cut every array data file short, as a crash or a bad disk would."""
  for root, _, files in os.walk(step_dir):
    for f in files:
      path = os.path.join(root, f)
      if os.sep + "d" + os.sep in path:
        with open(path, "r+b") as fh:
          fh.truncate(3)


def test_a_damaged_newest_step_is_moved_aside_and_its_number_saved_again(tmp_path):
  d = str(tmp_path / "ckpt")
  _save_steps(d, [5, 10])
  _damage(os.path.join(d, "10", "params"))
  logs = []
  ckpt = layout.TrainCheckpointer(d, keep=10, keep_best=False, async_save=False, log=logs.append)
  step, params, train, data, meta = ckpt.restore_latest(
      _abstract({"w": jnp.zeros((3, 2))}), _abstract(_train_item(0.0)), MODEL)
  assert step == 5 and float(params["w"][0, 0]) == 5.0 and data == {"next_index": 5}
  assert os.path.isdir(os.path.join(d, "10.corrupt")) and not os.path.exists(os.path.join(d, "10"))
  assert any("10 is corrupt or partial" in l and "10.corrupt" in l and "falling back to step 5" in l
             for l in logs)
  ckpt.save(10, {"w": jnp.full((3, 2), 7.0)}, _train_item(7.0), {"next_index": 10}, {"model": MODEL})
  ckpt.wait()
  assert ckpt.mngr.latest_step() == 10
  ckpt.close()
  assert float(layout.restore_params(d, _abstract({"w": jnp.zeros((3, 2))}), 10)["w"][0, 0]) == 7.0


def test_a_junk_step_directory_does_not_block_saving(tmp_path):
  d = str(tmp_path / "ckpt")
  _save_steps(d, [5])
  os.makedirs(os.path.join(d, "20", "params"))
  with open(os.path.join(d, "20", "params", "junk"), "w") as f:
    f.write("junk")
  ckpt = layout.TrainCheckpointer(d, keep=10, keep_best=False, async_save=False, log=print)
  step = ckpt.restore_latest(_abstract({"w": jnp.zeros((3, 2))}), _abstract(_train_item(0.0)), MODEL)[0]
  assert step == 5 and os.path.isdir(os.path.join(d, "20.corrupt"))
  ckpt.save(15, {"w": jnp.ones((3, 2))}, _train_item(1.0), {"next_index": 15}, {"model": MODEL})
  ckpt.wait()
  assert ckpt.mngr.all_steps() == [5, 15]
  ckpt.close()


def test_no_readable_step_moves_nothing(tmp_path):
  d = str(tmp_path / "ckpt")
  _save_steps(d, [5])
  _damage(os.path.join(d, "5", "params"))
  ckpt = layout.TrainCheckpointer(d, keep=10, keep_best=False, async_save=False, log=print)
  with pytest.raises(layout.CheckpointError, match=r"no readable checkpoint among steps \[5\]"):
    ckpt.restore_latest(_abstract({"w": jnp.zeros((3, 2))}), _abstract(_train_item(0.0)), MODEL)
  ckpt.close()
  assert os.path.isdir(os.path.join(d, "5"))


def test_another_model_shape_is_a_config_error_and_nothing_moves(tmp_path):
  d = str(tmp_path / "ckpt")
  _save_steps(d, [5, 10])
  ckpt = layout.TrainCheckpointer(d, keep=10, keep_best=False, async_save=False, log=print)
  with pytest.raises(ConfigError, match="checkpoint step 10 .* has hidden_size 8, the config says 4"):
    ckpt.restore_latest(_abstract({"w": jnp.zeros((3, 2))}), _abstract(_train_item(0.0)),
                        dict(MODEL, hidden_size=4))
  # Same model fields, other optimizer state: still a config error, not corruption.
  with pytest.raises(ConfigError, match="optimizer state and counters hold 2 arrays, this config's hold 3"):
    ckpt.restore_latest(_abstract({"w": jnp.zeros((3, 2))}),
                        _abstract(dict(_train_item(0.0), extra=jnp.zeros(()))), MODEL)
  with pytest.raises(ConfigError, match="parameters hold 1 arrays, this config's hold 1 of other shapes"):
    ckpt.restore_latest(_abstract({"w": jnp.zeros((4, 2))}), _abstract(_train_item(0.0)), MODEL)
  ckpt.close()
  assert sorted(os.listdir(d)) == ["10", "5"]


def _model_checkpoint(path, steps, sharding):
  cfg = get_preset("tiny")
  for s in steps:
    model = init_model(CausalLM, cfg, sharding, seed=s)
    layout.save_model(path, nnx.to_pure_dict(nnx.state(model)),
                          {"model": cfg.to_dict(), "kind": "causal_lm"}, step=s)
  return cfg


def test_readers_take_the_newest_readable_step_and_say_which(tmp_path, one_device_sharding):
  d = str(tmp_path / "model")
  _model_checkpoint(d, [1, 2], one_device_sharding)
  _damage(os.path.join(d, "2", "params"))
  logs = []
  loaded = load_checkpoint(d, one_device_sharding, log=logs.append)
  assert loaded.step == 1
  assert any("checkpoint" in l and "/2 is unreadable" in l and "trying step 1" in l for l in logs)
  assert any("using step 1" in l for l in logs)
  reference = init_model(CausalLM, loaded.cfg, one_device_sharding, seed=1)
  got, want = nnx.to_pure_dict(nnx.state(loaded.model)), nnx.to_pure_dict(nnx.state(reference))
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert os.path.isdir(os.path.join(d, "2"))  # readers move nothing
  with pytest.raises(layout.CheckpointError, match="/2/params"):
    load_checkpoint(d, one_device_sharding, step=2, log=logs.append)
