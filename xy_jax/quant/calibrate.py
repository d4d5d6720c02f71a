"""GPTQ calibration of a whole model, layer after layer, on the mesh it was trained on.

Each decoder layer is fed the calibration rows as the already-quantised earlier layers transform
them, and is quantised true-sequentially: q/k/v (one Hessian: they read the same input), then o,
then gate/up, then down, each from a forward pass in which the projections before it already hold
their quantised values. A projection's Hessian H = X^T X is summed over row chunks inside the
forward (`llama.Weight.record_input_gram`), so the calibration activations of one chunk are all
that ever exist at once besides the layer's input and output. Projections that share a Hessian are
quantised as one matrix (concatenated output columns); GPTQ's work is independent per output
column, so that matrix is sharded over its columns on every mesh axis that divides them and H is
replicated (`gptq.gptq` runs without communication).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xy_jax.errors import ConfigError
from xy_jax.models import int_weights, rope
from xy_jax.models.model_config import ModelConfig
from xy_jax.quant.gptq import gptq
from xy_jax.quant.quantize_model import QuantizedModel, quantize_model, quantized_config
from xy_jax.sharding import LogicalSharding

# Projections quantised together (they read the same input), in the order they are computed.
SEQUENCE = (("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), ("self_attn.o_proj",),
            ("mlp.gate_proj", "mlp.up_proj"), ("mlp.down_proj",))


def calibration_rows(docs: Sequence[Sequence[int]], rows: int, length: int) -> np.ndarray:
  """[n, length] int32 windows of the documents laid end to end (GPTQ's usual calibration rows),
  spread evenly over the whole stream so that every source is seen; fewer rows than asked when the
  text runs out (they then do not overlap), at least one."""
  stream = np.fromiter((t for d in docs for t in d), np.int32)
  n = min(rows, len(stream) // length)
  if n == 0:
    raise ConfigError(f"--calibration: {len(stream)} tokens, fewer than one row of "
                      f"--calibration_length={length}")
  starts = np.linspace(0, len(stream) - length, n).astype(np.int64)
  return np.stack([stream[s:s + length] for s in starts])


def column_sharding(sharding: LogicalSharding, m: int):
  """Output columns over every mesh axis whose size still divides them; H replicated."""
  mesh = sharding.mesh
  if mesh is None:
    return None, None
  axes, size = [], 1
  for name in mesh.axis_names:
    if m % (size * mesh.shape[name]) == 0:
      axes.append(name)
      size *= mesh.shape[name]
  spec = jax.P(None, tuple(axes) or None)
  return jax.NamedSharding(mesh, spec), jax.NamedSharding(mesh, jax.P())


def chunk_rows(sharding: LogicalSharding, n: int, batch_rows: int) -> int:
  """Rows per forward chunk: a multiple of the mesh's batch shards (`act_batch`) that divides n."""
  shards = 1
  if sharding.mesh is not None:
    for axes in sharding.spec(("act_batch",)):
      for axis in (axes,) if isinstance(axes, str) else axes or ():
        shards *= sharding.mesh.shape[axis]
  if n % shards:
    raise ConfigError(f"--calibration_rows={n}: the mesh splits rows {shards} ways; use a multiple of {shards}")
  rows = max(shards, batch_rows // shards * shards)
  while n % rows:
    rows -= shards
  return rows


def _module(layer: nnx.Module, path: str) -> nnx.Module:
  return functools.reduce(getattr, path.split("."), layer)


def layer_forward(layer_graphdef, cfg: ModelConfig):
  """jit(state, x [rows, T, D], tap) -> (the layer's output, X^T X of projection `tap`'s input, or
  None without a tap): one decoder layer on unpadded rows, as calibration runs it."""

  @functools.partial(jax.jit, static_argnames=("tap",))
  def forward(state, x, tap=None):
    positions = jax.lax.broadcasted_iota(jnp.int32, x.shape[:2], 1)
    segments = jnp.ones(x.shape[:2], jnp.int32)
    cos, sin = rope.rope_cos_sin(cfg, positions)
    layer = nnx.merge(layer_graphdef, state)
    if tap is None:
      return layer(x, cos, sin, segments, segments, 0)[0], None
    _module(layer, tap).record_input_gram = True
    (y, _), grams = nnx.capture(layer, nnx.Intermediate)(x, cos, sin, segments, segments, 0)
    return y, sum(jax.tree.leaves(grams))

  return forward


def gptq_quantize_model(model: nnx.Module, cfg: ModelConfig, tokens: np.ndarray, mode: str,
                        sharding: LogicalSharding, group_size: int | None = None,
                        damp: float = 0.01, block_size: int = 128, act_order: bool = False,
                        batch_rows: int = 8,
                        log: Callable[[str], None] | None = None) -> QuantizedModel:
  """`model` (float) quantised to `mode` with GPTQ on calibration `tokens` [n, T].

  Embeddings, norms and lm_head stay float, as `quantize_model` leaves them.
  """
  qcfg = quantized_config(cfg, mode, group_size)
  if cfg.lora_rank:
    raise ConfigError("model.lora_rank: merge the LoRA adapter into the model before quantising")
  log = log or (lambda _: None)
  gs = qcfg.quant_group_size if mode == "int4" else 0
  n, length = tokens.shape
  batch_rows = chunk_rows(sharding, n, batch_rows)
  decoder = model.model
  dtype = jnp.dtype(cfg.dtype)
  layer_graphdef, stacked = nnx.split(decoder.layers)
  act = sharding.named(("act_batch", "act_length", "act_embed")) if sharding.mesh is not None else None
  forward = layer_forward(layer_graphdef, cfg)

  table = decoder.embed_tokens.weight[...].astype(dtype)
  embed = jax.jit(lambda t: jnp.take(table, t, axis=0), out_shardings=act)
  chunks = [embed(jnp.asarray(tokens[i:i + batch_rows])) for i in range(0, n, batch_rows)]

  per_layer: dict[str, list] = {p: [] for group in SEQUENCE for p in group}
  example = nnx.merge(layer_graphdef, jax.tree.map(lambda a: a[0], stacked))
  n_in = {p: _module(example, p).n_in for p in per_layer}
  started = time.perf_counter()
  for index in range(cfg.num_hidden_layers):
    state = jax.tree.map(lambda a: a[index], stacked)
    for group in SEQUENCE:
      hessian = None
      for x in chunks:
        _, g = forward(state, x, tap=group[0])
        hessian = g if hessian is None else hessian + g
      weights = [_module_state(state, p)[...] for p in group]
      _quantize_group(group, weights, hessian, state, per_layer, n_in, mode, gs, damp,
                      block_size, act_order, sharding, index)
    chunks = [forward(state, x)[0] for x in chunks]
    done = index + 1
    eta = (time.perf_counter() - started) / done * (cfg.num_hidden_layers - done)
    log(f"gptq: layer {done}/{cfg.num_hidden_layers} quantised, ETA {eta:.0f} s")

  codes = {f"model.layers.{p}": (jnp.stack([q for q, _ in v]), jnp.stack([s for _, s in v]))
           for p, v in per_layer.items()}
  return quantize_model(model, cfg, mode, sharding, group_size, codes=codes, method="gptq")


def _module_state(state: nnx.State, path: str):
  return functools.reduce(lambda s, k: s[k], path.split("."), state)["weight"]


def _quantize_group(group, weights, hessian, state, per_layer, n_in, mode, gs, damp, block_size,
                    act_order, sharding, index):
  """GPTQ on the group's weights side by side; their dequantised values replace the float ones in
  `state` (the later projections of this layer and the next layer see them)."""
  k = math.prod(weights[0].shape[:n_in[group[0]]])
  widths = [math.prod(w.shape) // k for w in weights]
  joined = jnp.concatenate([w.reshape(k, -1) for w in weights], axis=1).astype(jnp.float32)
  w_sh, h_sh = column_sharding(sharding, joined.shape[1])
  if w_sh is not None:
    joined, hessian = jax.device_put(joined, w_sh), jax.device_put(hessian, h_sh)
  out = gptq(joined, hessian, mode=mode, group_size=gs, damp=damp, block_size=block_size,
             act_order=act_order)
  if not bool(jnp.isfinite(out.loss)):
    raise ConfigError(f"--damp={damp}: layer {index} {'/'.join(group)}: the dampened Hessian is not "
                      "positive definite; raise --damp or use more calibration text")
  start = 0
  for path, w, width in zip(group, weights, widths):
    q = out.codes[:, start:start + width].reshape(w.shape)
    scale = out.scale[:, start:start + width].reshape((-1,) + w.shape[n_in[path]:])
    start += width
    per_layer[path].append((q, scale))
    var = _module_state(state, path)
    deq = int_weights.dequantize(q, scale, n_in[path], jnp.float32).astype(w.dtype)
    var.set_value(jax.device_put(deq, w.sharding) if w_sh is not None else deq)

