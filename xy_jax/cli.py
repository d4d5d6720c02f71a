"""Shared command-line pieces for the tools: model source flags, mesh flag, one-line errors."""

from __future__ import annotations


import sys
from typing import Callable

import jax
from absl import app, flags, logging

from xy_jax.checkpoint import CheckpointError
from xy_jax.convert.hf_config import ConversionError
from xy_jax.models.model_config import ConfigError
from xy_jax.sharding import LogicalSharding, ShardingError, make_mesh

# Errors that mean "the input is wrong", reported as one line and exit code 2.
USER_ERRORS = (ConversionError, CheckpointError, ConfigError, ShardingError, FileExistsError,
               FileNotFoundError, ValueError)


def define_model_source_flags() -> None:
  flags.DEFINE_string("hf", None, "Hugging Face model directory (config.json, safetensors, tokenizer.model)")
  flags.DEFINE_string("checkpoint", None, "xy_jax (orbax) checkpoint directory")
  flags.DEFINE_bool("allow_torch_bin", False,
                    "read pytorch_model.bin with torch.load(weights_only=True) when no safetensors exist")


def define_mesh_flag(default: str = "1,1,-1") -> None:
  flags.DEFINE_string("mesh", default, "data,fsdp,tensor mesh sizes; one may be -1 (fill)")


def define_sampling_flags(max_new_tokens: int = 256, greedy: bool = True) -> None:
  """The model card's sampling defaults: temperature 0.7, top-p 0.95, 256 new tokens."""
  if greedy:
    flags.DEFINE_bool("greedy", False, "greedy decoding instead of sampling")
  flags.DEFINE_float("temperature", 0.7, "sampling temperature")
  flags.DEFINE_float("top_p", 0.95, "nucleus sampling mass")
  flags.DEFINE_integer("max_new_tokens", max_new_tokens, "tokens to generate at most")
  flags.DEFINE_integer("seed", 0, "sampling seed")


def sampling_from_flags():
  from xy_jax.infer.sampling import SamplingConfig
  f = flags.FLAGS
  return SamplingConfig(greedy=f["greedy"].value if "greedy" in f else False,
                        temperature=f.temperature, top_p=f.top_p, max_new_tokens=f.max_new_tokens)


def mesh_sharding(spec: str) -> LogicalSharding:
  try:
    data, fsdp, tensor = (int(x) for x in spec.split(","))
  except ValueError:
    raise ConfigError(f"--mesh={spec!r}: expected three integers data,fsdp,tensor") from None
  return LogicalSharding(make_mesh({"data": data, "fsdp": fsdp, "tensor": tensor}))


def log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def run(main: Callable[[list[str]], None]) -> None:
  """absl `app.run` with user errors turned into `error: <one line>` on stderr and exit 2."""

  def wrapped(argv):
    logging.set_verbosity(logging.WARNING)  # orbax and jax log every step at INFO
    try:
      main(argv)
    except USER_ERRORS as e:
      msg = str(e).splitlines()[0] if str(e) else type(e).__name__
      print(f"error: {msg}", file=sys.stderr)
      sys.exit(2)

  app.run(wrapped)



def devices_summary() -> str:
  return f"{jax.device_count()} {jax.devices()[0].platform} device(s), {jax.process_count()} process(es)"
