"""Device meshes and logical-axis sharding.

Parameters and activations carry *logical* axis names; one ordered rules table maps each name to
mesh axes, so changing the parallelism is a config change. Mesh axes absent from the mesh are
dropped, so one model runs on any mesh, a laptop's single device included.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from xy_jax.errors import ShardingError

MESH_AXES = ("data", "fsdp", "tensor")

# Logical name -> mesh axis or axes (None: replicated). First match wins.
DEFAULT_RULES: tuple[tuple[str, Any], ...] = (
    # activations
    ("act_batch", ("data", "fsdp")),
    ("act_length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("cache_batch", ("data", "fsdp")),
    ("cache_length", None),
    # parameters
    ("layers", None),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("norm", None),
)


def rules_with_overrides(overrides, rules=DEFAULT_RULES) -> tuple[tuple[str, Any], ...]:
  """The rules table with some logical names remapped (an empty tuple replicates)."""
  overrides = dict(overrides.items()) if hasattr(overrides, "items") else dict(overrides or {})
  known = {name for name, _ in rules}
  for name in overrides:
    if name not in known:
      raise ShardingError(f"mesh.rules.{name}: not a logical axis (known: {', '.join(sorted(known))})")
  fix = lambda v: None if v in ((), "", None) else (v if isinstance(v, str) else tuple(v))  # noqa: E731
  return tuple((name, fix(overrides[name]) if name in overrides else axes) for name, axes in rules)


def resolve_mesh_shape(requested: dict[str, int], num_devices: int) -> tuple[int, ...]:
  """Fill the single -1 entry so the product equals `num_devices`."""
  sizes = [int(requested.get(a, 1)) for a in MESH_AXES]
  fills = [a for a, s in zip(MESH_AXES, sizes) if s == -1]
  if len(fills) > 1:
    raise ShardingError(f"mesh.{fills[1]}=-1: only one mesh axis may be -1 (also mesh.{fills[0]})")
  for a, s in zip(MESH_AXES, sizes):
    if s == 0 or s < -1:
      raise ShardingError(f"mesh.{a}={s}: must be a positive size or -1")
  fixed = math.prod(s for s in sizes if s != -1)
  if fills:
    if num_devices % fixed:
      raise ShardingError(f"mesh.{fills[0]}=-1: {num_devices} devices are not divisible by the "
                          f"other axes' product {fixed}")
    sizes[MESH_AXES.index(fills[0])] = num_devices // fixed
  elif fixed != num_devices:
    shape = ", ".join(f"{a}={s}" for a, s in zip(MESH_AXES, sizes))
    raise ShardingError(f"mesh ({shape}) needs {fixed} devices but {num_devices} are available")
  return tuple(sizes)


def make_mesh(mesh_cfg: dict[str, int] | Any, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Build the (data, fsdp, tensor) mesh from config.

  `mesh_cfg` holds `data`, `fsdp`, `tensor` (one may be -1) and optionally `dcn_data`: the number
  of slices (or host groups joined by the slower data-center network) that split the data axis.
  Devices span all processes, so the same call works on one host and on a pod.
  """
  cfg = dict(mesh_cfg.items()) if hasattr(mesh_cfg, "items") else dict(mesh_cfg)
  devices = list(devices if devices is not None else jax.devices())
  shape = resolve_mesh_shape(cfg, len(devices))
  dcn_data = int(cfg.get("dcn_data", 1))
  if dcn_data > 1:
    if shape[0] % dcn_data:
      raise ShardingError(f"mesh.dcn_data={dcn_data} does not divide mesh.data={shape[0]}")
    # Granules are TPU slices, or processes (hosts) where devices have no slice index (GPUs).
    by_process = not hasattr(devices[0], "slice_index")
    granules = {d.process_index if by_process else d.slice_index for d in devices}
    if len(granules) != dcn_data:
      kind = "processes" if by_process else "slices"
      raise ShardingError(f"mesh.dcn_data={dcn_data}: the devices span {len(granules)} {kind}")
    ici = (shape[0] // dcn_data, shape[1], shape[2])
    grid = mesh_utils.create_hybrid_device_mesh(ici, (dcn_data, 1, 1), devices,
                                                process_is_granule=by_process)
  else:
    try:
      grid = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    except (AssertionError, NotImplementedError, ValueError):
      grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, MESH_AXES)


@dataclasses.dataclass(frozen=True)
class LogicalSharding:
  """A mesh plus the rules table. `mesh=None` turns every constraint into a no-op."""

  mesh: Mesh | None = None
  rules: tuple[tuple[str, Any], ...] = DEFAULT_RULES

  @property
  def platform(self) -> str:
    """Where the model runs: the mesh's devices (for AOT plans, not the host's), else the default."""
    return self.mesh.devices.flat[0].platform if self.mesh is not None else jax.default_backend()

  @property
  def data_parallel_size(self) -> int:
    """How many ways a batch's rows are split (the mesh's data and fsdp axes)."""
    return 1 if self.mesh is None else self.mesh.shape["data"] * self.mesh.shape["fsdp"]

  def spec(self, logical_axes: Sequence[str | None]) -> PartitionSpec:
    return logical_to_spec(logical_axes, self.rules, self.mesh)

  def named(self, logical_axes: Sequence[str | None]) -> NamedSharding:
    assert self.mesh is not None
    return NamedSharding(self.mesh, self.spec(logical_axes))

  def constrain(self, x: jax.Array, logical_axes: Sequence[str | None]) -> jax.Array:
    if self.mesh is None:
      return x
    return jax.lax.with_sharding_constraint(x, self.named(logical_axes))


def logical_to_spec(logical_axes: Sequence[str | None], rules=DEFAULT_RULES,
                    mesh: Mesh | None = None) -> PartitionSpec:
  table = dict(reversed(list(rules)))  # first match wins
  present = set(mesh.axis_names) if mesh is not None else set(MESH_AXES)
  used: set[str] = set()
  out = []
  for name in logical_axes:
    target = table.get(name) if name is not None else None
    if name is not None and name not in table:
      raise ShardingError(f"logical axis {name!r} has no entry in the sharding rules")
    axes = (target,) if isinstance(target, str) else tuple(target or ())
    axes = tuple(a for a in axes if a in present and a not in used)
    used.update(axes)
    out.append(None if not axes else axes[0] if len(axes) == 1 else axes)
  return PartitionSpec(*out)


def check_divisible(name: str, shape: Sequence[int], spec: PartitionSpec, mesh: Mesh,
                    logical_axes: Sequence[str | None] | None = None) -> None:
  for dim, (size, entry) in enumerate(zip(shape, spec)):
    if entry is None:
      continue
    axes = (entry,) if isinstance(entry, str) else tuple(entry)
    n = math.prod(mesh.shape[a] for a in axes)
    if size % n:
      label = f" ({logical_axes[dim]}={size})" if logical_axes else f" (size {size})"
      axis_desc = " x ".join(f"'{a}'={mesh.shape[a]}" for a in axes)
      raise ShardingError(f"{name}: dimension {dim}{label} is not divisible by mesh axis {axis_desc}")
