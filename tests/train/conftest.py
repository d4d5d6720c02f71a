"""Shared fixtures for the training tests."""

import os

import pytest

from tests.train.train_helpers import ROOT
from xy_jax.data.prepared import prepare_source
from xy_jax.data.tokenizer import load_tokenizer


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("prepared"))
  tok = load_tokenizer(None)
  for name, path in (("finance", "data/pretrain/finance.jsonl"), ("reports", "data/pretrain/reports"),
                     ("general", "data/pretrain/general.txt")):
    prepare_source(name, [os.path.join(ROOT, path)], root, tok, workers=2)
  return root


