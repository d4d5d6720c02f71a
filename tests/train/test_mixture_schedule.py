"""data.mixture_schedule: weights change at the given steps, exactly; the realised shares follow;
a resume across a change gives the same run; weights changed by hand re-plan from the resume."""

import json
import os

import pytest

from tests.train.test_config import ROOT, load
from xy_jax.config import validate
from xy_jax.data.pipeline import resumed_schedule
from xy_jax.errors import ConfigError
from xy_jax.train.loop import run

SCHEDULE = ((0, {"finance": 0.9, "general": 0.1}), (10, {"finance": 0.1, "general": 0.9}))


def _config(prepared, steps):
  cfg = load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))
  cfg.data.prepared_dir = prepared
  cfg.data.sources = {k: v for k, v in cfg.data.sources.items() if k in ("finance", "general")}
  cfg.data.buckets = (64,)
  cfg.data.mixture_schedule = SCHEDULE
  cfg.mesh.fsdp = -1
  cfg.optim.schedule, cfg.optim.warmup_steps = "constant", 0  # the same lr whatever train.steps
  cfg.train.steps, cfg.train.log_every, cfg.train.eval_every, cfg.train.checkpoint_every = steps, 5, 100, 100
  return cfg


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(l) for l in f]


def test_shares_follow_the_schedule_and_a_resume_across_it_is_exact(tmp_path, prepared):
  straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
  run(_config(prepared, 20), straight, log=lambda *_: None)
  shares = {r["step"]: r["mix/finance"] for r in _records(straight) if "mix/finance" in r}
  assert sorted(shares) == [5, 10, 15, 20]
  assert shares[5] > 0.75 and shares[10] > 0.75 and shares[15] < 0.25 and shares[20] < 0.25

  logs = []
  run(_config(prepared, 8), split, log=logs.append)  # stops at 8 with a checkpoint
  assert "data.mixture_schedule[1]: step 10 is not reached (train.steps=8); its weights apply only if " \
         "a resume raises train.steps past it" in logs
  logs = []
  run(_config(prepared, 20), split, log=logs.append)
  assert any("resumed from" in l for l in logs)
  a = {r["step"]: r["loss"] for r in _records(straight) if "loss" in r}
  b = {r["step"]: r["loss"] for r in _records(split) if "loss" in r}
  assert a == b  # identical floats, across the change at step 10


def test_weights_changed_by_hand_start_a_segment_at_the_resume():
  recorded = [[0, {"a": 1.0}], [100, {"a": 0.5, "b": 0.5}]]
  assert resumed_schedule(recorded, recorded, 50) == recorded
  changed = [[0, {"a": 0.2, "b": 0.8}], [100, {"a": 0.5, "b": 0.5}]]
  assert resumed_schedule(recorded, changed, 50) == [[0, {"a": 1.0}], [50, {"a": 0.2, "b": 0.8}],
                                                     [100, {"a": 0.5, "b": 0.5}]]
  assert resumed_schedule(recorded, changed, 150) == [[0, {"a": 1.0}], [100, {"a": 0.5, "b": 0.5}]]


@pytest.mark.parametrize("schedule,message", [
    (((10, {"finance": 1.0}),), "data.mixture_schedule[0]: no weight for source 'general': give every source"),
    (((0, SCHEDULE[0][1]), (0, SCHEDULE[1][1])), "data.mixture_schedule[1]: step 0 does not follow step 0"),
    (((True, SCHEDULE[1][1]),), "data.mixture_schedule[0]: (True, {"),
    (((10, {"finance": True, "general": 1.0}),), "weights must be numbers >= 0"),
    (((10, {"finance": 0.0, "general": 0.0}),), "weights must be numbers >= 0, not all 0"),
])
def test_a_schedule_that_would_not_do_what_it_says_is_refused(schedule, message):
  cfg = _config("unused", 20)
  cfg.data.mixture_schedule = schedule
  with pytest.raises(ConfigError) as e:
    validate(cfg)
  assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
