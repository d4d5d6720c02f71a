"""Test set-up: 8 fake CPU devices for sharding tests, and shared fixtures.

The XLA flag must be set before jax is imported anywhere.
"""

import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Two test workers may AOT-compile for TPU topologies at once; libtpu otherwise takes a host lock.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
# JAX's persistent compilation cache, shared by the test processes and the training subprocesses
# they start (inherited through the environment): most of them compile the same tiny programs.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "xy_jax_test_jit_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402

import xy_jax.stages  # noqa: E402,F401  registers every stage, as the entry points do
import pytest  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def one_device_sharding():
  from xy_jax.sharding import LogicalSharding, make_mesh
  return LogicalSharding(make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1]))


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
  """The shipped pretraining corpus, tokenized once per test session."""
  from xy_jax.data.prepared import prepare_source
  from xy_jax.data.tokenizer import load_tokenizer
  root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = str(tmp_path_factory.mktemp("prepared"))
  tok = load_tokenizer(None)
  for name, path in (("finance", "data/pretrain/finance.jsonl"), ("reports", "data/pretrain/reports"),
                     ("general", "data/pretrain/general.txt")):
    prepare_source(name, [os.path.join(root_dir, path)], out, tok, workers=2)
  return out


@pytest.fixture(scope="session")
def lm_checkpoint(tmp_path_factory, prepared):
  """A tiny LM pretrained for 40 steps on the shipped corpus (PPO, quantisation, chat, Self-QA)."""
  from tests.train.train_helpers import train_checkpoint
  workdir = str(tmp_path_factory.mktemp("tiny_lm"))
  return train_checkpoint("pretrain_tiny.py", workdir, f"--config.data.prepared_dir={prepared}",
                          "--config.train.steps=40", "--config.train.eval_every=40")
