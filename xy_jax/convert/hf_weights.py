"""Tensor names and layouts: ours (stacked, einsum-shaped) <-> Hugging Face (per layer, [out, in]).

Every rule is a reshape plus, for projections, one transpose: HF stores `weight` as [out, in], we
store [in..., out...] so einsums read `BTD,DNH->BTNH`. `in_dims` says how many leading dims of our
per-layer tensor are the input side.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Iterator

import numpy as np
from safetensors import safe_open

from xy_jax.errors import ConversionError
from xy_jax.convert.hf_config import read_json

LAYER_PREFIX = "model.layers."

# Last two path parts -> number of input-side dims (None: same layout as HF).
_IN_DIMS = {
    "q_proj.weight": 1, "k_proj.weight": 1, "v_proj.weight": 1, "o_proj.weight": 2,
    "gate_proj.weight": 1, "up_proj.weight": 1, "down_proj.weight": 1,
    "lm_head.weight": 1, "score.weight": 1, "embed_tokens.weight": None,
    "input_layernorm.weight": None, "post_attention_layernorm.weight": None, "norm.weight": None,
}


@dataclasses.dataclass(frozen=True)
class TensorRule:
  ours: str  # e.g. "model.layers.self_attn.q_proj.weight"
  shape: tuple[int, ...]  # our full shape (with the leading layer axis when stacked)
  stacked: bool
  in_dims: int | None

  def hf_names(self) -> list[str]:
    if not self.stacked:
      return [self.ours]
    rest = self.ours[len(LAYER_PREFIX):]
    return [f"{LAYER_PREFIX}{i}.{rest}" for i in range(self.shape[0])]

  @property
  def unit_shape(self) -> tuple[int, ...]:
    """Our shape of one HF tensor (one layer)."""
    return self.shape[1:] if self.stacked else self.shape

  @property
  def hf_shape(self) -> tuple[int, ...]:
    s = self.unit_shape
    if self.in_dims is None:
      return s
    return (math.prod(s[self.in_dims:]), math.prod(s[:self.in_dims]))

  def from_hf(self, t: np.ndarray) -> np.ndarray:
    if self.in_dims is None:
      return t.reshape(self.unit_shape)
    return np.ascontiguousarray(t.T).reshape(self.unit_shape)

  def to_hf(self, x: np.ndarray) -> np.ndarray:
    if self.in_dims is None:
      return x
    s = x.shape
    return np.ascontiguousarray(x.reshape(math.prod(s[:self.in_dims]), -1).T)


def tensor_rules(flat_shapes: dict[str, tuple[int, ...]]) -> list[TensorRule]:
  """Rules for every parameter of a model, in HF file order (embeddings, layers, norm, head)."""
  rules = []
  for name, shape in flat_shapes.items():
    key = ".".join(name.split(".")[-2:])
    if key not in _IN_DIMS:
      raise ConversionError(f"parameter {name}: no Hugging Face mapping")
    rules.append(TensorRule(name, tuple(shape), name.startswith(LAYER_PREFIX), _IN_DIMS[key]))
  order = {"model.embed_tokens.weight": 0}
  return sorted(rules, key=lambda r: (order.get(r.ours, 1 if r.stacked else 2), r.ours))


class HFWeightFiles:
  """Read-only view of an HF directory's safetensors (single file or sharded with an index)."""

  INDEX = "model.safetensors.index.json"
  SINGLE = "model.safetensors"

  def __init__(self, hf_dir: str):
    self.dir = hf_dir
    index_path = os.path.join(hf_dir, self.INDEX)
    single_path = os.path.join(hf_dir, self.SINGLE)
    if os.path.isfile(index_path):
      weight_map = read_json(index_path).get("weight_map")
      if not isinstance(weight_map, dict):
        raise ConversionError(f"{index_path}: no 'weight_map' object")
      self.where = {k: os.path.join(hf_dir, v) for k, v in weight_map.items()}
      self.source = index_path
    elif os.path.isfile(single_path):
      self.where = None
      self.source = single_path
    else:
      raise ConversionError(f"{hf_dir}: no {self.SINGLE} or {self.INDEX} (a PyTorch .bin checkpoint "
                            f"needs --allow_torch_bin)")
    for shard in sorted(set(self.where.values()) if self.where else [single_path]):
      if not os.path.isfile(shard):
        raise ConversionError(f"{shard}: missing shard (listed in {self.INDEX})")
    self._open: dict[str, object] = {}
    if self.where is None:
      self.where = {k: single_path for k in self._file(single_path).keys()}

  def _file(self, path: str):
    if path not in self._open:
      try:
        self._open[path] = safe_open(path, "numpy")
      except Exception as e:  # safetensors raises its own error types for damaged headers
        raise ConversionError(f"{path}: unreadable safetensors file ({e})") from None
    return self._open[path]

  def names(self) -> set[str]:
    return set(self.where)

  def shape(self, name: str) -> tuple[int, ...]:
    f = self._file(self.where[name])
    if name not in f.keys():
      raise ConversionError(f"{self.where[name]}: tensor {name} listed in the index but not in the file")
    return tuple(f.get_slice(name).get_shape())

  def get(self, name: str) -> np.ndarray:
    try:
      return self._file(self.where[name]).get_tensor(name)
    except Exception as e:  # safetensors' own error types for damaged data
      raise ConversionError(f"{self.where[name]}: tensor {name} unreadable ({e})") from None

  def check(self, rules: list[TensorRule]) -> list[str]:
    """Every expected tensor present with the right shape. Returns the names nothing uses."""
    expected = set()
    for rule in rules:
      for hf_name in rule.hf_names():
        expected.add(hf_name)
        if hf_name not in self.where:
          raise ConversionError(f"{self.source}: tensor {hf_name} is missing")
        got = self.shape(hf_name)
        if got != rule.hf_shape:
          raise ConversionError(f"{self.where[hf_name]}: tensor {hf_name} has shape {list(got)}, "
                                f"expected {list(rule.hf_shape)} from config.json")
    return sorted(self.names() - expected)


class TorchBinFiles(HFWeightFiles):
  """`pytorch_model*.bin` read with `torch.load(weights_only=True)`; only behind an explicit flag."""

  def __init__(self, hf_dir: str):
    import torch  # test/conversion extra only

    self.dir = hf_dir
    index_path = os.path.join(hf_dir, "pytorch_model.bin.index.json")
    if os.path.isfile(index_path):
      files = sorted(set(read_json(index_path)["weight_map"].values()))
    else:
      files = ["pytorch_model.bin"]
    self.source = os.path.join(hf_dir, files[0])
    self.tensors = {}
    for fname in files:
      path = os.path.join(hf_dir, fname)
      if not os.path.isfile(path):
        raise ConversionError(f"{path}: missing shard")
      for k, v in torch.load(path, map_location="cpu", weights_only=True).items():
        self.tensors[k] = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
    self.where = {k: self.source for k in self.tensors}

  def shape(self, name):
    return tuple(self.tensors[name].shape)

  def get(self, name):
    return self.tensors[name]


def iter_shards(entries: Iterator[tuple[str, np.ndarray]], max_shard_bytes: int):
  """Group (name, tensor) pairs into shards of at most `max_shard_bytes` (one tensor may exceed it)."""
  shard, size = {}, 0
  for name, t in entries:
    if shard and size + t.nbytes > max_shard_bytes:
      yield shard
      shard, size = {}, 0
    shard[name] = t
    size += t.nbytes
  if shard:
    yield shard


def index_json(weight_map: dict[str, str], total_size: int) -> str:
  return json.dumps({"metadata": {"total_size": total_size}, "weight_map": weight_map}, indent=2)
