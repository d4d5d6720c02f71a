"""A run starting from a checkpoint uses that checkpoint's tokenizer, or refuses a different one."""

import os

import pytest

from tests.train.test_config import load
from tests.train.train_helpers import ROOT
from xy_jax.data.tokenizer_training import train_tokenizer
from xy_jax.errors import ConfigError
from xy_jax.train.setup import tokenizer_file_for


def _sft_from(ckpt):
  cfg = load(os.path.join(ROOT, "configs", "sft_tiny.py"))
  cfg.init_from_checkpoint = ckpt
  return cfg


def test_unset_tokenizer_comes_from_the_checkpoint(lm_checkpoint):
  logged = []
  assert tokenizer_file_for(_sft_from(lm_checkpoint), logged.append) == os.path.join(
      lm_checkpoint, "tokenizer.model")
  assert "from " + lm_checkpoint in logged[0]
  cfg = load(os.path.join(ROOT, "configs", "ppo_tiny.py"))
  cfg.ppo.actor_checkpoint = lm_checkpoint
  assert tokenizer_file_for(cfg, logged.append) == os.path.join(lm_checkpoint, "tokenizer.model")


def test_a_different_tokenizer_is_refused(tmp_path, lm_checkpoint):
  other = train_tokenizer(str(tmp_path / "other"), vocab_size=1024)
  cfg = _sft_from(lm_checkpoint)
  cfg.data.tokenizer = other
  with pytest.raises(ConfigError, match=f"data.tokenizer={other} differs from .*leave data.tokenizer unset"):
    tokenizer_file_for(cfg, print)
  cfg.data.tokenizer = os.path.join(lm_checkpoint, "tokenizer.model")  # the same file is fine
  assert tokenizer_file_for(cfg, print) == cfg.data.tokenizer
