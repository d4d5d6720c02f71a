"""PPO rollouts in a serving layout (`ppo.rollout_mesh`), the way DeepSpeed-Chat's Hybrid Engine
and OpenRLHF/verl/Tunix hand the actor to an inference engine.

Training shards the actor fsdp x tensor: every decode step would all-gather the fsdp-sharded
weights, token after token. Once per iteration the actor's weights are resharded, on device, onto
a second mesh over the same devices where no decode step gathers weights: weights split over
`tensor` (heads, MLP) and, with fsdp > 1 there, over `fsdp` on the model dimension, which the
activations then split too (2-D weight-stationary: all-reduces of small decode activations instead);
prompts over `data`; the KV cache rows over data, kv heads over tensor. Float weights travel and stay in the compute
dtype (bfloat16: half the float32 master weights). Generation runs there; its tokens come back to
the training layout, where experience and updates run as before.

`ppo.rollout_mesh`: "auto" (the layout holding the fewest weight and KV-cache bytes per
chip, see `auto_shape`), "train" (decode in the training layout), or "data,fsdp,tensor".
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from xy_jax.models.factory import abstract_model, state_shardings
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError, ShardingError
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding, make_mesh
from xy_jax.weights.cast import cast_floats

MAX_TENSOR = 8


def _power_of_two_divisors(n: int) -> list[int]:
  out, t = [], 1
  while n % t == 0 and t <= n:
    out.append(t)
    t *= 2
  return out


def auto_shape(cfg: ModelConfig, n_devices: int, rows: int, cache_len: int,
               hbm_bytes: float | None = None) -> tuple[int, int, int]:
  """(data, fsdp, tensor) for decoding `rows` prompts with caches of `cache_len` on `n_devices`.

  A decode step reads every weight it holds and its KV cache once per token, so the layout that
  holds the fewest of those bytes per chip decodes fastest: tensor (a power of two dividing the kv
  heads, at most 8: one host's ICI group) and fsdp split the weights, tensor and data split the
  cache. Layouts whose weights and cache pass half of `hbm_bytes` are skipped; ties go to fewer
  fsdp ways (fewer all-reduces)."""
  itemsize = np.dtype(cfg.dtype).itemsize
  weight_bytes = cfg.param_count() * itemsize
  per_row = 2 * cfg.num_hidden_layers * cache_len * cfg.num_key_value_heads * cfg.resolved_head_dim * itemsize
  best = None
  for tensor in (t for t in _power_of_two_divisors(np.gcd(n_devices, cfg.num_key_value_heads)) if t <= MAX_TENSOR):
    for fsdp in _power_of_two_divisors(n_devices // tensor):
      data = n_devices // (tensor * fsdp)
      if rows % data:
        continue
      held = weight_bytes / (tensor * fsdp) + per_row * rows / data / tensor
      if hbm_bytes and held > 0.5 * hbm_bytes:
        continue
      key = (held, fsdp)
      if best is None or key < best[0]:
        best = (key, (data, fsdp, tensor))
  if best is None:
    raise ConfigError(f"ppo.rollout_mesh='auto': no layout of {n_devices} devices holds the actor's weights "
                      f"and KV cache in half of a chip's memory; name one (data,fsdp,tensor)")
  return best[1]


def parse(spec: str, field: str = "ppo.rollout_mesh") -> tuple[int, int, int] | str:
  if spec in ("auto", "train"):
    return spec
  try:
    shape = tuple(int(x) for x in spec.split(","))
  except ValueError:
    shape = ()
  if len(shape) != 3 or any(s <= 0 for s in shape):
    raise ConfigError(f"{field}={spec!r}: 'auto', 'train' or 'data,fsdp,tensor' (e.g. '16,1,8')")
  return shape


def serving_rules(rules):
  """With an fsdp axis in the serving mesh, weights stay split over it and so do the activations'
  model dimension (rows over data only): each matmul contracts its local slice and all-reduces the
  small decode activations, instead of all-gathering weights every token (2-D weight-stationary
  tensor parallelism)."""
  override = {"act_batch": ("data",), "cache_batch": ("data",), "act_embed": ("fsdp",)}
  return tuple((name, override.get(name, axes)) for name, axes in rules)


@functools.partial(jax.jit, static_argnums=1)
def _cast_floats(tree, dtype):
  """Jitted once per dtype (and tree structure): the cast runs every PPO iteration."""
  return cast_floats(tree, dtype)


@dataclasses.dataclass
class RolloutLayout:
  """The actor's serving mesh and how to move weights and rows onto it and back."""
  sharding: LogicalSharding
  graphdef: Any  # the actor (CausalLM) built with the serving sharding
  param_shardings: Any  # pure dict of NamedShardings for the actor's parameters
  rows: NamedSharding  # [B, ...] arrays: rows over the batch axes
  replicated: NamedSharding
  dtype: Any  # the compute dtype: float weights travel and are held in it

  def reshard(self, actor_params):
    """The actor's parameters in the serving layout, float ones in the compute dtype (every
    matmul casts to it anyway, so the tokens do not change): cast where they are, then moved
    device-to-device, no host round trip."""
    return jax.device_put(_cast_floats(actor_params, self.dtype), self.param_shardings)

  def put_rows(self, x):
    return jax.device_put(x, self.rows)

  def put_replicated(self, x):
    return jax.device_put(x, self.replicated)


def rollout_layout(spec: str, actor_cfg: ModelConfig, train: LogicalSharding, rows_per_step: int,
                   cache_len: int = 0, hbm_bytes: float | None = None) -> RolloutLayout | None:
  """The serving layout `spec` asks for on the training mesh's devices; None: decode in the
  training layout (asked for, or the same shape)."""
  shape = parse(spec)
  if shape == "train":
    return None
  devices = list(train.mesh.devices.flat)
  if shape == "auto":
    shape = auto_shape(actor_cfg, len(devices), rows_per_step, cache_len, hbm_bytes)
  if int(np.prod(shape)) != len(devices):
    raise ConfigError(f"ppo.rollout_mesh={spec!r}: {int(np.prod(shape))} devices, the training mesh has "
                      f"{len(devices)}")
  if tuple(train.mesh.shape.values()) == tuple(shape):
    return None
  dp = shape[0] * shape[1]
  if rows_per_step % dp:
    raise ConfigError(f"ppo.rollout_mesh={spec!r}: data x fsdp = {dp} does not divide "
                      f"ppo.prompts_per_step={rows_per_step}")
  try:
    mesh = make_mesh({"data": shape[0], "fsdp": shape[1], "tensor": shape[2]}, devices)
    sharding = LogicalSharding(mesh, serving_rules(train.rules) if shape[1] > 1 else train.rules)
    serve_cfg = actor_cfg.replace(param_dtype=actor_cfg.dtype)
    graphdef, abs_state = abstract_model(CausalLM, serve_cfg, sharding)
    param_sh = nnx.to_pure_dict(state_shardings(abs_state, sharding))
  except ShardingError as e:  # names a mesh axis, not which mesh: the serving one
    chosen = "" if spec != "auto" else f" (chose {','.join(map(str, shape))})"
    raise ConfigError(f"ppo.rollout_mesh={spec!r}{chosen}: {e}") from None
  return RolloutLayout(sharding, graphdef, param_sh, NamedSharding(mesh, sharding.spec(("act_batch",))),
                       NamedSharding(mesh, PartitionSpec()), jnp.dtype(actor_cfg.dtype))


def device_hbm_bytes() -> float | None:
  """A chip's memory when the runtime reports it (TPU/GPU), else None (CPU, AOT topologies)."""
  try:
    stats = jax.devices()[0].memory_stats() or {}
  except Exception:  # backends without memory stats
    return None
  return stats.get("bytes_limit")
