"""train.eval_tasks: everything an evaluation needs is checked before step 1, and named as the
config field (train.eval_tasks[i].shots), not as tools/evaluate.py's flags."""

import os
import subprocess
import sys

import pytest

from tests.train.test_config import ROOT, load
from tests.train.train_helpers import env
from xy_jax.config import validate
from xy_jax.errors import ConfigError
from xy_jax.train.eval_tasks import eval_splits

CMMLU = os.path.join(ROOT, "data", "eval", "bench", "cmmlu")  # dev splits of 5 rows


def _config(**task):
  cfg = load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))
  cfg.train.eval_tasks = ({"task": "cmmlu", "data_dir": CMMLU, "limit": 2}, {"task": "mmlu", "data_dir": CMMLU, **task})
  return cfg


def _error(call) -> str:
  with pytest.raises(ConfigError) as e:
    call()
  assert "\n" not in str(e.value)
  return str(e.value)


@pytest.mark.parametrize("task,message", [
    ({"task": "gsm8k"}, "train.eval_tasks[1].task='gsm8k': choose one of ceval, cmmlu, financeiq, mmlu"),
    ({"split": "val", "task": "cmmlu"}, "train.eval_tasks[1].split='val': cmmlu has dev, test"),
    ({"shots": -1}, "train.eval_tasks[1].shots=-1: an integer >= 0"),
    ({"limit": 0}, "train.eval_tasks[1].limit=0: an integer >= 1"),
    ({"encoding": "klingon"}, "train.eval_tasks[1].encoding='klingon': not an encoding"),
    ({"shot": 3}, "train.eval_tasks[1].shot: not a field"),
    ({"task": "cmmlu"}, "train.eval_tasks[1].task='cmmlu': already evaluated by an earlier entry"),
])
def test_settings_are_checked_with_the_config(task, message):
  cfg = _config(**task)
  assert _error(lambda: (validate(cfg), eval_splits(cfg, print))).startswith(message)


@pytest.mark.parametrize("task,message", [
    ({"data_dir": "/no/mmlu"}, "train.eval_tasks[1].data_dir=/no/mmlu: no /no/mmlu/test (a mmlu layout"),
    ({"data_dir": os.path.join(ROOT, "data", "eval", "bench", "mmlu"), "subjects": ("law",)},
     "train.eval_tasks[1].subjects: 'law' has no file"),
    ({"data_dir": os.path.join(ROOT, "data", "eval", "bench", "mmlu"), "shots": 6},
     "train.eval_tasks[1].shots=6: more than the valid dev rows of every subject"),
])
def test_the_data_is_checked_before_the_run_sets_up(task, message):
  cfg = _config(**task)
  validate(cfg)
  assert _error(lambda: eval_splits(cfg, print)).startswith(message)


def test_more_shots_than_the_dev_split_stop_a_run_before_step_1(tmp_path):
  task = {"task": "cmmlu", "data_dir": CMMLU, "shots": 6}
  proc = subprocess.run([sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/pretrain_tiny.py",
                         f"--workdir={tmp_path}", f"--config.train.eval_tasks=({task!r},)",
                         f"--config.data.prepared_dir={tmp_path / 'prepared'}"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith(
      f"error: train.eval_tasks[0].shots=6: more than the valid dev rows of every subject ({CMMLU}/dev/")
  assert not os.path.exists(tmp_path / "checkpoints") and not os.path.exists(tmp_path / "prepared")


def test_generated_answers_longer_than_the_model_stop_the_run_at_setup():
  from types import SimpleNamespace
  from xy_jax.train.eval_tasks import EvalTasks
  cfg = _config(task="financeiq", data_dir=os.path.join(ROOT, "data", "eval", "bench", "financeiq"),
                mode="generate", max_new_tokens=512)
  rs = SimpleNamespace(task=SimpleNamespace(kind="causal_lm", name="pretrain"),
                       model_cfg=SimpleNamespace(max_position_embeddings=512))
  assert _error(lambda: EvalTasks(eval_splits(cfg, print), rs)).startswith(
      "train.eval_tasks[1].max_new_tokens=512: leaves no room for the question in the model's 512 positions")
