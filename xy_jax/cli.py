"""Shared command-line pieces for the tools: model source flags, mesh flag, one-line errors."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import traceback
import warnings
from typing import Callable

import jax
from absl import app, flags, logging
from ml_collections import ConfigDict, config_flags

from xy_jax.errors import CheckpointError, ConfigError, ConversionError, PeerFailed, ShardingError
from xy_jax.orbax_errors import quiet_background_errors
from xy_jax.sharding import LogicalSharding, make_mesh

# Errors that mean "the input is wrong", reported as one line and exit code 2.
USER_ERRORS = (ConversionError, CheckpointError, ConfigError, ShardingError, PeerFailed, OSError,
               ValueError)


class DictFieldParser(flags.ArgumentParser):
  """Dict-valued config fields (`model.rope_scaling`, a source in `data.sources`): a JSON object or a
  Python dict literal; `None` / `null` unsets. ml_collections has no parser for `dict` fields and
  reads ConfigDict ones as Python literals only (JSON's true / false / null fail)."""

  def __init__(self, wrap=dict):
    self.wrap = wrap

  def parse(self, argument):
    if not isinstance(argument, str):  # the config's own value (the flag's default)
      return argument
    text = argument.strip()
    if text in ("None", "null"):
      return None
    try:
      value = json.loads(text)
    except ValueError:
      try:
        value = ast.literal_eval(text)
      except (SyntaxError, ValueError):
        value = None
    if not isinstance(value, dict):
      raise ValueError(f"expected a JSON object, e.g. '{{\"type\": \"linear\", \"factor\": 2.0}}'")
    return self.wrap(value)

  def flag_type(self):
    return "dict"


config_flags.register_flag_parser_for_type(dict, DictFieldParser())
config_flags.register_flag_parser_for_type(ConfigDict, DictFieldParser(ConfigDict))


def define_model_source_flags() -> None:
  flags.DEFINE_string("hf", None, "Hugging Face model directory (config.json, safetensors, tokenizer.model)")
  flags.DEFINE_string("checkpoint", None, "xy_jax (orbax) checkpoint directory")
  flags.DEFINE_bool("allow_torch_bin", False,
                    "read pytorch_model.bin with torch.load(weights_only=True) when no safetensors exist")


def define_calibration_flags(prefix: str = "") -> None:
  """GPTQ's calibration text and settings (tools/quantize.py --method gptq, tools/quant_quality.py);
  `prefix` heads each help line."""
  from xy_jax.data.calibration_text import DEFAULT_CALIBRATION
  flags.DEFINE_multi_string("calibration", list(DEFAULT_CALIBRATION),
                            prefix + "calibration text: PATH (.txt, .jsonl text), PATH:FIELD of a .jsonl, "
                            "or PATH:sft (the user turns of an SFT file) (repeatable)")
  flags.DEFINE_integer("calibration_rows", 128, prefix + "calibration windows")
  flags.DEFINE_integer("calibration_length", 2048, prefix + "tokens per window")
  flags.DEFINE_float("damp", 0.01, prefix + "dampening, a fraction of the mean Hessian diagonal")
  flags.DEFINE_bool("act_order", False, prefix + "rows by decreasing Hessian diagonal (groups stay in "
                    "order, so vLLM loads the export)")


def calibration_from_flags(tok, max_len: int):
  """The --calibration text as GPTQ's [rows, length] windows, no longer than the model's `max_len`
  positions (tools/quantize.py and tools/quant_quality.py)."""
  from xy_jax.data.calibration_text import calibration_docs
  from xy_jax.quant.calibrate import calibration_rows
  f = flags.FLAGS
  length = min(f.calibration_length, max_len)
  if length < f.calibration_length:
    log(f"--calibration_length={f.calibration_length}: past the model's {max_len} positions; windows of {length}")
  rows = calibration_rows(tok.encode_batch(calibration_docs(f.calibration, log), bos=True), f.calibration_rows,
                          length)
  log(f"gptq: {rows.shape[0]} calibration windows of {rows.shape[1]} tokens")
  return rows


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


def load_causal_lm(sharding: LogicalSharding, dtype: str, purpose: str):
  """The --hf / --checkpoint model; a reward model (no LM head) is refused naming `purpose`."""
  from xy_jax.weights.load import load_model
  f = flags.FLAGS
  loaded = load_model(hf=f.hf, ckpt=f.checkpoint, sharding=sharding, allow_torch_bin=f.allow_torch_bin,
                      log=log, dtype=dtype)
  if loaded.kind != "causal_lm":
    raise ValueError(f"{f.hf or f.checkpoint}: a {loaded.kind} model cannot {purpose}; pass a causal "
                     "LM (a PPO checkpoint gives its actor)")
  return loaded


def sampling_from_flags():
  from xy_jax.infer.sampling import SamplingConfig
  f = flags.FLAGS
  return SamplingConfig(greedy=f["greedy"].value if "greedy" in f else False,
                        temperature=f.temperature, top_p=f.top_p, max_new_tokens=f.max_new_tokens)


def utf8_text(text: str, what: str) -> str:
  """`text` unchanged if it is valid Unicode; bytes that were not UTF-8 (arguments and stdin keep
  them as surrogate escapes) raise ValueError naming `what`."""
  try:
    text.encode("utf-8")
  except UnicodeEncodeError as e:
    raise ValueError(f"{what} is not valid UTF-8 (byte {e.start}); set the terminal or file to "
                     "UTF-8") from None
  return text


def load_config_file(spec: str) -> ConfigDict:
  """'configs/x.py' or 'configs/x.py:arg' -> its get_config(), loaded exactly as --config loads it
  (ml_collections' own parser), for programs that run several configs (the demo)."""
  from ml_collections.config_flags.config_flags import ConfigFileFlagParser  # not re-exported
  return ConfigFileFlagParser(name="config", lock_config=False).parse(spec)


def parse_mesh(spec: str) -> tuple[int, int, int]:
  """'data,fsdp,tensor' (one may be -1) -> three integers."""
  try:
    data, fsdp, tensor = (int(x) for x in spec.split(","))
  except ValueError:
    raise ConfigError(f"--mesh={spec!r}: expected three integers data,fsdp,tensor") from None
  return data, fsdp, tensor


def mesh_sharding(spec: str) -> LogicalSharding:
  return LogicalSharding(make_mesh(dict(zip(("data", "fsdp", "tensor"), parse_mesh(spec)))))


def log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def error_line(e: BaseException) -> str:
  """One line for a person: what failed and where (file:line, path or flag)."""
  if isinstance(e, SyntaxError):
    return f"{e.filename}:{e.lineno}: syntax error ({e.msg})"
  if isinstance(e, OSError) and e.filename and e.strerror:
    return f"{e.filename}: {e.strerror}"
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def _config_flag_error(e: Exception, argv: list[str]) -> str:
  """Config-file flags (ml_collections) raise bare Python errors; name the file, line or field."""
  text = str(e)
  if isinstance(e, SyntaxError):
    return error_line(e)
  if isinstance(e, OSError) and "Failed loading config file" in text:
    lines = [l.strip() for l in text.splitlines()]  # "Attempted [...]:", path, reason
    if len(lines) >= 4:
      reason = re.sub(r"^\[Errno \d+\] ", "", lines[3]).split(": '")[0]
      return f"config file {lines[2]}: {reason}"
  if isinstance(e, (AttributeError, KeyError)):
    lines = text.strip("'\"").replace("\\n", "\n").splitlines()
    field = lines[0].strip("'\"\\")
    hint = f" ({lines[1].strip()})" if len(lines) > 1 else ""
    for arg in argv:
      name = arg.lstrip("-").split("=", 1)[0]
      if "." in name and field in name.split("."):
        return f"--{name}: no such config field{hint}"
    return f"config field {field!r} does not exist{hint}"
  frames = [f for f in traceback.extract_tb(e.__traceback__)
            if "site-packages" not in f.filename and not f.filename.startswith("<")]
  where = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
  return f"{where}{type(e).__name__}: {error_line(e)}"


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with every failure (flags, config files, overrides) as one line, exit 2."""
  try:
    rest = flags.FLAGS(argv)
    for name in flags.FLAGS:
      value = flags.FLAGS[name].value
      if type(value).__name__ == "_ErrorConfig":  # a config file that failed to load
        value.stage  # noqa: B018  raises the load error
  except flags.Error as e:
    _fail(f"{error_line(e)} (--helpfull lists the flags)")
  except Exception as e:  # config files are Python: any error can come out of them
    _fail(_config_flag_error(e, argv))
  return rest


def _fail(msg: str, code: int = 2) -> None:
  # The error line is the last one a person reads: coroutines a failed async save or restore left
  # pending are collected at exit, and each would warn ("was never awaited") after it.
  warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)
  print(f"error: {msg}", file=sys.stderr, flush=True)
  sys.exit(code)


def run(main: Callable[[list[str]], None]) -> None:
  """absl `app.run` with user errors turned into `error: <one line>` on stderr and exit 2, and
  Ctrl-C into exit 130 without a traceback. XY_JAX_TRACEBACK=1 shows the traceback instead."""

  def wrapped(argv):
    logging.set_verbosity(logging.WARNING)  # orbax and jax log every step at INFO
    quiet_background_errors()
    try:
      main(argv)
    except USER_ERRORS as e:
      if os.environ.get("XY_JAX_TRACEBACK"):
        raise
      _fail(error_line(e))
    except KeyboardInterrupt:
      _fail("interrupted", 130)

  app.run(wrapped, flags_parser=parse_flags)


def devices_summary() -> str:
  return f"{jax.device_count()} {jax.devices()[0].platform} device(s), {jax.process_count()} process(es)"
