"""optim.trainable: only the selected parameters train and hold optimizer state; the rest stay
bit-identical; a resume under another selection carries the shared moments over."""

import os

import jax
import numpy as np
import pytest

from tests.train.test_config import ROOT, load
from xy_jax.errors import ConfigError
from xy_jax.train import trainable
from xy_jax.train.loop import run
from xy_jax.train.setup import setup

EMBEDDINGS = r"embed_tokens|lm_head"


def _config(prepared, **optim):
  cfg = load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))
  cfg.data.prepared_dir = prepared
  cfg.mesh.fsdp = -1  # the 8 fake CPU devices
  cfg.train.steps, cfg.train.eval_every, cfg.train.checkpoint_every = 4, 4, 2
  cfg.optim.warmup_steps = 1
  for k, v in optim.items():
    cfg.optim[k] = v
  return cfg


def _leaves(params):
  return {trainable.path_of(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(params)[0]}


def test_embeddings_only_training_leaves_everything_else_bit_identical(prepared):
  cfg = _config(prepared, trainable=EMBEDDINGS, frozen_dtype="bfloat16")
  rs = setup(cfg, log=lambda *_: None)
  state = rs.init_state(lambda *_: None)
  before = _leaves(state.params)
  assert {p for p, x in before.items() if x.dtype != np.float32} == {
      p for p in before if "embed_tokens" not in p and "lm_head" not in p}  # frozen held in bfloat16
  opt_sizes = sum(x.size for x in jax.tree.leaves(state.opt_state))
  embed_sizes = sum(x.size for p, x in before.items() if "embed_tokens" in p or "lm_head" in p)
  assert opt_sizes == 2 * embed_sizes + 2  # Adam's two moments of the embeddings, and two counters
  iterator = iter(rs.task.train_source[i] for i in range(3))
  for batch in iterator:
    state, metrics = rs.train_step(state, rs.to_device(batch))
  after = _leaves(state.params)
  for path, value in before.items():
    if "embed_tokens" in path or "lm_head" in path:
      assert not np.array_equal(after[path], value), path
    else:
      assert after[path].tobytes() == value.tobytes(), path


def test_a_pattern_that_selects_nothing_is_one_line(prepared):
  with pytest.raises(ConfigError, match=r"optim.trainable='nothing_here' matches no parameter \(paths look "
                                        r"like lm_head.weight"):
    setup(_config(prepared, trainable="nothing_here"), log=lambda *_: None)


def test_resume_under_another_selection_carries_shared_moments(tmp_path, prepared):
  logs = []
  workdir = str(tmp_path / "run")
  run(_config(prepared, trainable=EMBEDDINGS), workdir, log=logs.append)
  cfg = _config(prepared, trainable="")
  cfg.train.steps = 6
  result = run(cfg, workdir, log=logs.append)
  assert result.steps_done == 6
  line = next(l for l in logs if "optim.trainable changed" in l)
  assert f"at step 4 ({EMBEDDINGS!r} -> '')" in line
  # The ten other parameter arrays of the tiny model start with fresh moments (two each); the
  # embeddings' moments and the counters carry over.
  assert "20 optimizer state array(s) start fresh" in line, line
