"""The tiny LM as the quantisation tests read it: float32 weights computing in bfloat16, on a mesh."""

import pytest

from xy_jax.sharding import LogicalSharding, make_mesh
from xy_jax.weights.load import load_checkpoint


@pytest.fixture(scope="module")
def sharding():
  return LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}))


@pytest.fixture(scope="module")
def float_lm(lm_checkpoint, sharding):
  return load_checkpoint(lm_checkpoint, sharding, dtype="bfloat16", param_dtype="float32")
