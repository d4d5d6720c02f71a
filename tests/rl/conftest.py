"""Small trained checkpoints for the PPO tests: a pretrained tiny LM and a reward model from it."""

import os

import pytest

from tests.train.train_helpers import ROOT, env


def _train(config, workdir, *overrides):
  import subprocess
  import sys
  proc = subprocess.run([sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/{config}",
                         f"--workdir={workdir}", "--cpu_devices=2", *overrides],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return os.path.join(workdir, "checkpoints")


@pytest.fixture(scope="session")
def lm_checkpoint(tmp_path_factory, prepared):
  workdir = str(tmp_path_factory.mktemp("ppo_lm"))
  return _train("pretrain_tiny.py", workdir, f"--config.data.prepared_dir={prepared}",
                "--config.train.steps=40", "--config.train.eval_every=40")


@pytest.fixture(scope="session")
def rm_checkpoint(tmp_path_factory, lm_checkpoint):
  workdir = str(tmp_path_factory.mktemp("ppo_rm"))
  return _train("reward_tiny.py", workdir, f"--config.init_from_checkpoint={lm_checkpoint}",
                "--config.train.steps=20", "--config.train.eval_every=20")
