"""Written outputs (HF exports, atomic files) get the modes the umask gives any file the user
writes, not the private 0700 / 0600 of the temporary directory they are built in."""

import contextlib
import os
import stat

import pytest

from xy_jax.convert.hf import export_hf
from xy_jax.data.tokenizer import DEFAULT_ASSET
from xy_jax.io_utils import atomic_output_file
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset


@contextlib.contextmanager
def _umask(mask):
  old = os.umask(mask)
  try:
    yield
  finally:
    os.umask(old)


def _modes(path):
  out = {".": stat.S_IMODE(os.stat(path).st_mode)}
  for name in os.listdir(path):
    out[name] = stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode)
  return out


@pytest.mark.parametrize("mask,dir_mode,file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)],
                         ids=["umask022", "umask027"])
def test_an_hf_export_follows_the_umask(tmp_path, one_device_sharding, mask, dir_mode, file_mode):
  cfg = get_preset("tiny")
  model = init_model(CausalLM, cfg, one_device_sharding)
  out = str(tmp_path / "hf")
  with _umask(mask):
    export_hf(model, cfg, out, tokenizer_file=DEFAULT_ASSET, max_shard_bytes=1 << 20, log=lambda _: None)
  modes = _modes(out)
  assert modes.pop(".") == dir_mode
  assert any(n.endswith(".safetensors") for n in modes) and "config.json" in modes
  assert modes == {name: file_mode for name in modes}


def test_an_atomic_file_follows_the_umask(tmp_path):
  out = str(tmp_path / "results.json")
  with _umask(0o022), atomic_output_file(out) as tmp:
    with open(tmp, "w") as f:
      f.write("{}")
  assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
