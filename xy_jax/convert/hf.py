"""Import from and export to Hugging Face `LlamaForCausalLM` directories.

Import streams one HF tensor at a time into sharded arrays (stacked layers are filled slice by
slice), so host memory holds one tensor, never the model. Export pulls one layer slice at a time
and writes size-capped safetensors shards plus the index.
"""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec
from safetensors.numpy import save_file

from xy_jax.convert import hf_config, hf_weights
from xy_jax.errors import ConversionError
from xy_jax.data.tokenizer import ChatTemplate, Tokenizer
from xy_jax.io_utils import atomic_output_dir
from xy_jax.models.factory import MODEL_CLASSES, abstract_model, param_paths, state_shardings
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding

Log = Callable[[str], None]


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
  """{'model.norm.weight': x, ...} -> the nested pure dict."""
  tree: dict[str, Any] = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split(".")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


@functools.lru_cache(maxsize=None)
def _layer_setter(sharding: NamedSharding):
  return jax.jit(lambda a, x, i: jax.lax.dynamic_update_index_in_dim(a, x, i, 0),
                 donate_argnums=0, out_shardings=sharding)


@functools.lru_cache(maxsize=None)
def _layer_getter():
  return jax.jit(lambda a, i: jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False))


def _device_array(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
  return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _to_host(x: jax.Array) -> np.ndarray:
  if x.is_fully_addressable:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def open_weights(hf_dir: str, allow_torch_bin: bool = False) -> hf_weights.HFWeightFiles:
  has_safetensors = any(os.path.isfile(os.path.join(hf_dir, f)) for f in
                        (hf_weights.HFWeightFiles.INDEX, hf_weights.HFWeightFiles.SINGLE))
  if not has_safetensors and allow_torch_bin:
    return hf_weights.TorchBinFiles(hf_dir)
  return hf_weights.HFWeightFiles(hf_dir)


def load_hf(hf_dir: str, sharding: LogicalSharding, kind: str = "causal_lm",
            param_dtype: str = "float32", allow_torch_bin: bool = False, log: Log = print,
            **model_overrides) -> tuple[ModelConfig, nnx.Module]:
  """An HF directory -> (config, model with sharded parameters). Validates everything first."""
  if not os.path.isdir(hf_dir):
    raise ConversionError(f"{hf_dir}: not a directory")
  cfg = hf_config.model_config_from_hf(os.path.join(hf_dir, "config.json"),
                                       param_dtype=param_dtype, **model_overrides)
  files = open_weights(hf_dir, allow_torch_bin)
  cls = MODEL_CLASSES[kind]
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  shardings = param_paths(state_shardings(abs_state, sharding))
  shapes = {k: v.shape for k, v in param_paths(abs_state).items()}
  rules = hf_weights.tensor_rules(shapes)
  unused = files.check(rules)
  if unused:
    log(f"ignoring {len(unused)} tensor(s) with no counterpart: {', '.join(unused[:5])}"
        + (" ..." if len(unused) > 5 else ""))

  dtype = jnp.dtype(param_dtype)
  flat: dict[str, jax.Array] = {}
  for n, rule in enumerate(rules, 1):
    target = shardings[rule.ours]
    if rule.stacked:
      layer_sharding = NamedSharding(target.mesh, PartitionSpec(*tuple(target.spec)[1:]))
      arr = jax.jit(lambda: jnp.zeros(rule.shape, dtype), out_shardings=target)()
      for i, name in enumerate(rule.hf_names()):
        host = rule.from_hf(files.get(name)).astype(dtype)
        arr = _layer_setter(target)(arr, _device_array(host, layer_sharding), i)
    else:
      arr = _device_array(rule.from_hf(files.get(rule.ours)).astype(dtype), target)
    flat[rule.ours] = arr
    log(f"[{n}/{len(rules)}] {rule.ours} {list(rule.shape)}")
  nnx.replace_by_pure_dict(abs_state, unflatten(flat))
  return cfg, nnx.merge(graphdef, abs_state)


def export_hf(model: nnx.Module, cfg: ModelConfig, out: str, kind: str = "causal_lm",
              dtype: str = "float32", tokenizer_file: str | None = None,
              template: ChatTemplate = ChatTemplate(), max_shard_bytes: int = 2 << 30,
              overwrite: bool = False, log: Log = print) -> None:
  """A model -> HF directory: config, generation config, sharded safetensors + index, tokenizer."""
  if cfg.quant != "none":
    raise ConversionError(f"model.quant={cfg.quant!r}: export the float checkpoint the quantised one "
                          "was made from (HF has no reader for xy_jax integer weights)")
  np_dtype = jnp.dtype(dtype)
  flat = {k: v[...] for k, v in param_paths(nnx.state(model)).items()}
  rules = hf_weights.tensor_rules({k: v.shape for k, v in flat.items()})

  def tensors():
    for rule in rules:
      for name, host in host_tensors(rule, flat[rule.ours]):
        yield name, rule.to_hf(host).astype(np_dtype)

  write_hf_dir(out, tensors(), hf_config.model_config_to_hf(cfg, kind, dtype), cfg, tokenizer_file,
               template, max_shard_bytes, overwrite, log)


def host_tensors(rule: hf_weights.TensorRule, arr: jax.Array):
  """(HF name, our-layout host array) for each HF tensor of `rule`: one per layer when stacked."""
  if rule.stacked:
    for i, name in enumerate(rule.hf_names()):
      yield name, _to_host(_layer_getter()(arr, i))
  else:
    yield rule.ours, _to_host(arr)


def write_hf_dir(out: str, tensors, config: dict[str, Any], cfg: ModelConfig,
                 tokenizer_file: str | None, template: ChatTemplate, max_shard_bytes: int,
                 overwrite: bool, log: Log) -> None:
  """An HF directory from (name, host array) pairs in HF layout: shards + index, `config`,
  generation config and the tokenizer files. A failure leaves nothing at `out`."""
  if tokenizer_file is not None and not os.path.isfile(tokenizer_file):
    raise ConversionError(f"{tokenizer_file}: tokenizer.model not found")
  tok = Tokenizer(tokenizer_file) if tokenizer_file else None
  if tok is None:
    log("warning: no tokenizer.model for this model (pass --tokenizer); writing weights and "
        "config only, no tokenizer files")
  elif tok.vocab_size > cfg.vocab_size:
    raise ConversionError(f"{tokenizer_file}: {tok.vocab_size} pieces but the model has "
                          f"vocab_size={cfg.vocab_size}")

  writer = jax.process_index() == 0
  with atomic_output_dir(out, overwrite) if writer else _discard() as tmp:
    shards = list(_write_shards(tmp, tensors, max_shard_bytes, writer))
    if not writer:
      return
    weight_map = {}
    total = 0
    for i, (fname, names, nbytes) in enumerate(shards, 1):
      final = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
      os.replace(os.path.join(tmp, fname), os.path.join(tmp, final))
      weight_map.update({n: final for n in names})
      total += nbytes
    with open(os.path.join(tmp, hf_weights.HFWeightFiles.INDEX), "w") as f:
      f.write(hf_weights.index_json(weight_map, total))
    hf_config.write_json(os.path.join(tmp, "config.json"), config)
    hf_config.write_json(os.path.join(tmp, "generation_config.json"), hf_config.generation_config(cfg))
    if tok is not None:
      _write_tokenizer(tmp, tok, cfg, template)
  log(f"wrote {out}: {len(shards)} shard(s), {total / 2**20:.1f} MiB")


def _write_tokenizer(directory: str, tok: Tokenizer, cfg: ModelConfig, template: ChatTemplate) -> None:
  """tokenizer.model plus the transformers files that describe it (with the chat template)."""
  shutil.copyfile(tok.model_file, os.path.join(directory, "tokenizer.model"))
  pieces = {i: tok.piece(i) for i in {cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id, 0}}
  add_prefix = tok.sp.encode_as_pieces("a")[0].startswith("\u2581")
  hf_config.write_json(os.path.join(directory, "tokenizer_config.json"),
                       hf_config.tokenizer_config(cfg, template, pieces, add_prefix))
  hf_config.write_json(os.path.join(directory, "special_tokens_map.json"), {
      "bos_token": pieces[cfg.bos_token_id], "eos_token": pieces[cfg.eos_token_id],
      "pad_token": pieces[cfg.pad_token_id], "unk_token": pieces[0]})


def _write_shards(tmp: str, entries, max_shard_bytes: int, writer: bool):
  for i, shard in enumerate(hf_weights.iter_shards(entries, max_shard_bytes)):
    fname = f"shard-{i:05d}.safetensors"
    if writer:
      path = os.path.join(tmp, fname)
      try:
        save_file(shard, path, metadata={"format": "pt"})
      except Exception as e:  # safetensors reports I/O errors (disk full) as its own type
        raise ConversionError(f"{path}: {str(e).split('I/O error: ')[-1]}") from None
    yield fname, list(shard), sum(t.nbytes for t in shard.values())


class _discard:
  """Non-writing processes still take part in the gathers, then drop the data."""

  def __enter__(self):
    return None

  def __exit__(self, *exc):
    return False
