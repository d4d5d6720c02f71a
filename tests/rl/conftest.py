"""A small reward model for the PPO tests, trained from the shared tiny LM (tests/conftest.py)."""

import pytest

from tests.train.train_helpers import train_checkpoint


@pytest.fixture(scope="session")
def rm_checkpoint(tmp_path_factory, lm_checkpoint):
  workdir = str(tmp_path_factory.mktemp("ppo_rm"))
  return train_checkpoint("reward_tiny.py", workdir, f"--config.init_from_checkpoint={lm_checkpoint}",
                          "--config.train.steps=20", "--config.train.eval_every=20")
