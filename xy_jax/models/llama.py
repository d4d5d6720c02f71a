"""The XuanYuan decoder: a LLaMA-style transformer in Flax NNX.

Axis letters (einsum strings use them): B batch, T query length, S key length, N query heads,
K kv heads, G query heads per kv head (N = K*G, K outer as in HF), H head dim, D model width,
F MLP width, V vocabulary, L layers.

Attribute paths equal Hugging Face `LlamaForCausalLM` names (`model.layers.self_attn.q_proj.weight`),
so conversion is a reshape and a transpose per tensor. Layers are stacked on a leading L axis and
run with `jax.lax.scan` (one compiled block) under a configurable remat policy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from xy_jax.models import rope
from xy_jax.models.attention import dot_product_attention
from xy_jax.models.model_config import ModelConfig
from xy_jax.models import int_weights, lora
from xy_jax.sharding import LogicalSharding

INIT_STD = 0.02  # HF LlamaConfig.initializer_range


# Logical axes of the stacked KV cache [L, B, S, K, H].
CACHE_AXES = ("layers", "cache_batch", "cache_length", "act_kv_heads", None)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
  """Keys/values of every layer plus the segment ids of every slot (-1: not yet written)."""

  k: jax.Array  # [L, B, S, K, H]
  v: jax.Array  # [L, B, S, K, H]
  segment_ids: jax.Array  # [B, S] int32
  index: jax.Array  # [] int32: next slot to write

  @classmethod
  def empty(cls, cfg: ModelConfig, batch: int, length: int, dtype=None) -> "KVCache":
    shape = (cfg.num_hidden_layers, batch, length, cfg.num_key_value_heads, cfg.resolved_head_dim)
    dtype = dtype or jnp.dtype(cfg.dtype)
    return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype),
               jnp.full((batch, length), -1, jnp.int32), jnp.zeros((), jnp.int32))


class QuantizedWeight(nnx.Variable):
  """Integer weights and their scales: state like a Param, but never trained."""


class Weight(nnx.Module):
  """A bias-free projection whose single parameter is called `weight` (as in HF).

  The first `n_in` dims of the weight are contracted. With `cfg.quant` set (and `quantizable`),
  `weight` holds integers and `weight_scale` their scales (see `xy_jax.models.int_weights`).
  When `cfg.lora_targets` names this projection (`name`) and `cfg.lora_rank` > 0, `lora_a` and
  `lora_b` hold its adapter (see `xy_jax.models.lora`).
  """

  def __init__(self, shape: Sequence[int], axes: Sequence[str], cfg: ModelConfig, rngs: nnx.Rngs,
               init=None, n_in: int = 1, quantizable: bool = True,
               sharding: LogicalSharding = LogicalSharding(), name: str = ""):
    self.dtype = jnp.dtype(cfg.dtype)
    # XLA:CPU runs a 16-bit matmul on its AMX/bf16 kernels only when the product is float32 (a
    # 16-bit result takes a generic path, 4x slower here); the result is rounded right after.
    # Elsewhere the product stays 16-bit: checkpointed dot outputs would double in size.
    self.f32_product = sharding.platform == "cpu" and self.dtype.itemsize == 2
    self.n_in = n_in
    self.quant = cfg.quant if quantizable else "none"
    shape, axes = tuple(shape), tuple(axes)
    if self.quant == "none":
      init = init or jax.nn.initializers.normal(INIT_STD)
      self.weight = nnx.Param(init(rngs.params(), shape, jnp.dtype(cfg.param_dtype)),
                              logical_axes=axes)
    else:
      groups = int_weights.num_groups(math.prod(shape[:n_in]), self.quant, cfg.quant_group_size)
      self.weight = QuantizedWeight(jnp.zeros(shape, int_weights.storage_dtype(self.quant)),
                                    logical_axes=axes)
      self.weight_scale = QuantizedWeight(
          jnp.ones((groups,) + shape[n_in:], jnp.dtype(cfg.param_dtype)),
          logical_axes=(None,) + axes[n_in:])
    # When set (by GPTQ calibration), each call sows X^T X of its inputs as `input_gram`.
    self.record_input_gram = False
    self.lora_id = -1
    if cfg.lora_rank and name in lora.targeted(cfg.lora_targets):
      self.lora_id = lora.TARGETS.index(name)
      self.lora_scale, self.lora_rate = cfg.lora_scale, cfg.lora_dropout
      pdt = jnp.dtype(cfg.param_dtype)
      self.lora_a = lora.LoRAParam(lora.init_a(rngs.params(), shape[:n_in] + (cfg.lora_rank,), pdt),
                                   logical_axes=axes[:n_in] + (None,))
      self.lora_b = lora.LoRAParam(jnp.zeros((cfg.lora_rank,) + shape[n_in:], pdt),
                                   logical_axes=(None,) + axes[n_in:])

  def __call__(self, eq: str, x: jax.Array, out_dtype=None, dropout_key=None) -> jax.Array:
    """`eq` documents the contraction in axis letters ("BTD,DNH->BTNH"): the trailing input dims
    of `x` meet the leading dims of the weight. It runs as one 2-D matmul, which XLA:CPU (and its
    backward pass) executes about twice as fast as the batched einsum; on TPU/GPU it is the same."""
    lhs, rhs = eq.split("->")[0].split(",")
    n_in = len(set(lhs) & set(rhs))  # contracted: x's trailing dims, the weight's leading ones
    assert lhs[len(lhs) - n_in:] == rhs[:n_in] and n_in == self.n_in, eq
    w = self.weight[...]
    k = math.prod(w.shape[:n_in])
    x2 = x.astype(self.dtype).reshape(-1, k)
    if self.record_input_gram:
      xf = x2.astype(jnp.float32)
      self.sow(nnx.Intermediate, "input_gram", jnp.dot(xf.T, xf, precision=jax.lax.Precision.HIGHEST))
    if self.quant == "none":
      out_dtype = out_dtype or self.dtype
      y = jnp.dot(x2, w.astype(self.dtype).reshape(k, -1),
                  preferred_element_type=jnp.float32 if self.f32_product else out_dtype)
      y = y.astype(out_dtype)
    else:
      scale = self.weight_scale[...]
      y = int_weights.quantized_matmul(x2, w.reshape(k, -1), scale.reshape(scale.shape[0], -1),
                                       self.dtype, out_dtype or self.dtype)
    if self.lora_id >= 0:
      a, b = self.lora_a[...], self.lora_b[...]
      key = None if dropout_key is None else jax.random.fold_in(dropout_key, self.lora_id)
      d = lora.delta(x2, a.reshape(k, -1), b.reshape(b.shape[0], -1), self.lora_scale, self.lora_rate,
                     key, self.dtype)
      y = (y.astype(jnp.float32) + d).astype(y.dtype)
    return y.reshape(x.shape[:x.ndim - n_in] + w.shape[n_in:])


class RMSNorm(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    del rngs
    self.weight = nnx.Param(jnp.ones((cfg.hidden_size,), jnp.dtype(cfg.param_dtype)),
                            logical_axes=("norm",))
    self.eps = cfg.rms_norm_eps
    self.dtype = jnp.dtype(cfg.dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    xf = x.astype(jnp.float32)
    y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + self.eps)
    return self.weight[...].astype(self.dtype) * y.astype(self.dtype)


class Attention(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, sharding: LogicalSharding):
    d, n, k, h = (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads,
                  cfg.resolved_head_dim)
    self.q_proj = Weight((d, n, h), ("embed", "q_heads", "head_dim"), cfg, rngs, sharding=sharding,
                         name="q_proj")
    self.k_proj = Weight((d, k, h), ("embed", "kv_heads", "head_dim"), cfg, rngs, sharding=sharding,
                         name="k_proj")
    self.v_proj = Weight((d, k, h), ("embed", "kv_heads", "head_dim"), cfg, rngs, sharding=sharding,
                         name="v_proj")
    self.o_proj = Weight((n, h, d), ("q_heads", "head_dim", "embed"), cfg, rngs, n_in=2,
                         sharding=sharding, name="o_proj")
    self.impl = cfg.attention_impl
    self.sharding = sharding

  def __call__(self, x, cos, sin, segment_ids, kv_segment_ids, q_offset, cache_kv=None, key=None):
    shard = self.sharding.constrain
    q = checkpoint_name(self.q_proj("BTD,DNH->BTNH", x, dropout_key=key), "query_proj")
    k = checkpoint_name(self.k_proj("BTD,DKH->BTKH", x, dropout_key=key), "key_proj")
    v = checkpoint_name(self.v_proj("BTD,DKH->BTKH", x, dropout_key=key), "value_proj")
    q = shard(rope.apply_rope(q, cos, sin), ("act_batch", "act_length", "act_heads", None))
    k = shard(rope.apply_rope(k, cos, sin), ("act_batch", "act_length", "act_kv_heads", None))
    v = shard(v, ("act_batch", "act_length", "act_kv_heads", None))
    if cache_kv is not None:
      # The whole [L, B, S, K, H] cache rides in the layer scan's carry and is updated in place at
      # (layer, q_offset); as a scanned input/output it was copied every layer of every step.
      k_all, v_all, layer = cache_kv
      at = (layer, 0, q_offset, 0, 0)
      update = jax.lax.dynamic_update_slice
      k_all = shard(update(k_all, k[None].astype(k_all.dtype), at), CACHE_AXES)
      v_all = shard(update(v_all, v[None].astype(v_all.dtype), at), CACHE_AXES)
      k = jax.lax.dynamic_index_in_dim(k_all, layer, keepdims=False)
      v = jax.lax.dynamic_index_in_dim(v_all, layer, keepdims=False)
      cache_kv = (k_all, v_all)
    out = dot_product_attention(q, k.astype(q.dtype), v.astype(q.dtype), q_segment_ids=segment_ids,
                                kv_segment_ids=kv_segment_ids, q_offset=q_offset, impl=self.impl,
                                sharding=self.sharding)
    out = checkpoint_name(self.o_proj("BTNH,NHD->BTD", out, dropout_key=key), "out_proj")
    return shard(out, ("act_batch", "act_length", "act_embed")), cache_kv


class MLP(nnx.Module):
  """SwiGLU: down(silu(gate(x)) * up(x))."""

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, sharding: LogicalSharding):
    d, f = cfg.hidden_size, cfg.intermediate_size
    self.gate_proj = Weight((d, f), ("embed", "mlp"), cfg, rngs, sharding=sharding, name="gate_proj")
    self.up_proj = Weight((d, f), ("embed", "mlp"), cfg, rngs, sharding=sharding, name="up_proj")
    self.down_proj = Weight((f, d), ("mlp", "embed"), cfg, rngs, sharding=sharding, name="down_proj")
    self.sharding = sharding

  def __call__(self, x: jax.Array, key=None) -> jax.Array:
    h = (jax.nn.silu(self.gate_proj("BTD,DF->BTF", x, dropout_key=key))
         * self.up_proj("BTD,DF->BTF", x, dropout_key=key))
    h = self.sharding.constrain(h, ("act_batch", "act_length", "act_mlp"))
    return self.down_proj("BTF,FD->BTD", h, dropout_key=key)


class DecoderLayer(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, sharding: LogicalSharding):
    self.input_layernorm = RMSNorm(cfg, rngs)
    self.self_attn = Attention(cfg, rngs, sharding)
    self.post_attention_layernorm = RMSNorm(cfg, rngs)
    self.mlp = MLP(cfg, rngs, sharding)

  def __call__(self, x, cos, sin, segment_ids, kv_segment_ids, q_offset, cache_kv=None, key=None):
    attn, cache_kv = self.self_attn(self.input_layernorm(x), cos, sin, segment_ids, kv_segment_ids,
                                    q_offset, cache_kv, key)
    x = x + attn
    x = x + self.mlp(self.post_attention_layernorm(x), key)
    return x, cache_kv


_REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_with_no_batch_dims": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_qkv_proj": jax.checkpoint_policies.save_only_these_names(
        "query_proj", "key_proj", "value_proj", "out_proj"),
}


class Decoder(nnx.Module):
  """HF's `LlamaModel`: embeddings, stacked layers, final norm. Returns final hidden states."""

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, sharding: LogicalSharding):
    self.cfg = cfg
    self.sharding = sharding
    self.embed_tokens = Weight((cfg.vocab_size, cfg.hidden_size), ("vocab", "embed"), cfg, rngs,
                               quantizable=False)

    @nnx.split_rngs(splits=cfg.num_hidden_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0,
              transform_metadata={nnx.PARTITION_NAME: "layers", "logical_axes": "layers"})
    def make_layers(rngs: nnx.Rngs) -> DecoderLayer:
      return DecoderLayer(cfg, rngs, sharding)

    self.layers = make_layers(rngs)
    self.norm = RMSNorm(cfg, rngs)

  def __call__(self, tokens: jax.Array, positions: jax.Array, segment_ids: jax.Array,
               cache: KVCache | None = None,
               layer_states: Sequence[nnx.State] | None = None) -> tuple[jax.Array, KVCache | None]:
    """tokens/positions/segment_ids [B, T] -> hidden [B, T, D] (and the updated cache).

    `layer_states`, when given, are the layers' parameters already split into one state per layer
    (see `unstack_layers`); they are used instead of the stacked `self.layers` values.
    """
    cfg = self.cfg
    dtype = jnp.dtype(cfg.dtype)
    # Gather from a table replicated over the vocabulary (in the compute dtype): a gather from a
    # vocab-sharded table forces XLA's partitioner to rematerialise the output; the all-gather is the
    # cheaper way. Its model dimension follows the activations' (split only in serving layouts).
    table = self.sharding.constrain(self.embed_tokens.weight[...].astype(dtype), (None, "act_embed"))
    x = jnp.take(table, tokens, axis=0)
    x = self.sharding.constrain(x, ("act_batch", "act_length", "act_embed"))
    cos, sin = rope.rope_cos_sin(cfg, positions)

    if cache is None:
      q_offset, kv_segment_ids, cache_kv = 0, segment_ids, None
    else:
      q_offset = cache.index
      kv_segment_ids = jax.lax.dynamic_update_slice_in_dim(
          cache.segment_ids, segment_ids.astype(jnp.int32), q_offset, axis=1)
      # The cache is the biggest tensor of decoding: shard it like the keys it holds.
      cache_kv = (self.sharding.constrain(cache.k, CACHE_AXES),
                  self.sharding.constrain(cache.v, CACHE_AXES))

    graphdef, layer_state = nnx.split(self.layers)
    dropout = lora.dropout_key() if cfg.lora_rank and cfg.lora_dropout else None

    def block(carry, xs):
      x, kv = carry
      state, layer_index = xs
      layer = nnx.merge(graphdef, state)
      key = None if dropout is None else jax.random.fold_in(dropout, layer_index)
      x, kv = layer(x, cos, sin, segment_ids, kv_segment_ids, q_offset,
                    None if kv is None else (*kv, layer_index), key)
      return (x, kv), None

    if cfg.remat_policy != "none":
      block = jax.checkpoint(block, policy=_REMAT_POLICIES[cfg.remat_policy],
                             prevent_cse=not cfg.scan_layers)
    if layer_states is None and not cfg.scan_layers:
      layer_states = layer_slices(layer_state, cfg.num_hidden_layers)
    if layer_states is None:
      layer_ids = jnp.arange(cfg.num_hidden_layers, dtype=jnp.int32)
      (x, new_kv), _ = jax.lax.scan(block, (x, cache_kv), (layer_state, layer_ids))
    else:
      new_kv = cache_kv
      for i, state in enumerate(layer_states):
        (x, new_kv), _ = block((x, new_kv), (state, i))

    x = self.norm(x)
    if cache is not None:
      cache = KVCache(new_kv[0], new_kv[1], kv_segment_ids, cache.index + tokens.shape[1])
    return x, cache


class CausalLM(nnx.Module):
  """HF's `LlamaForCausalLM`: decoder + untied LM head. Logits are float32."""

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, sharding: LogicalSharding = LogicalSharding()):
    self.model = Decoder(cfg, rngs, sharding)
    # Kept in float by weight-only quantisation, as published GPTQ and LLM.int8 releases keep it.
    self.lm_head = Weight((cfg.hidden_size, cfg.vocab_size), ("embed", "vocab"), cfg, rngs,
                          quantizable=False, sharding=sharding, name="lm_head")
    self.sharding = sharding

  def __call__(self, tokens, positions=None, segment_ids=None, cache=None, layer_states=None):
    positions, segment_ids = default_positions(tokens, positions, segment_ids)
    h, cache = self.model(tokens, positions, segment_ids, cache, layer_states)
    cfg = self.model.cfg
    key = lora.dropout_key() if cfg.lora_rank and cfg.lora_dropout else None
    key = None if key is None else jax.random.fold_in(key, cfg.num_hidden_layers)
    logits = self.lm_head("BTD,DV->BTV", h, out_dtype=jnp.float32, dropout_key=key)
    return self.sharding.constrain(logits, ("act_batch", "act_length", "act_vocab")), cache


def default_positions(tokens, positions=None, segment_ids=None):
  """One unpadded document per row unless told otherwise."""
  if positions is None:
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1], dtype=jnp.int32), tokens.shape)
  if segment_ids is None:
    segment_ids = jnp.ones(tokens.shape, jnp.int32)
  return positions, segment_ids


def layer_slices(stacked, num_layers: int) -> list:
  """One pytree per layer from a pytree of [L, ...] stacked layer arrays."""
  return [jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(num_layers)]


def unstack_layers(state: nnx.State, num_layers: int) -> tuple[nnx.State, list[nnx.State]]:
  """Split a decoder's stacked layer parameters into one state per layer (copies, made once).

  For XLA:CPU decoding: a matmul inside the layer scan reads its weight through a dynamic slice,
  which XLA:CPU materialises before every matmul, i.e. it copies every weight of the model once per
  generated token. Separate per-layer buffers are read in place (8-row decode step of the 49M
  `small` preset: 1.6 ms less per token in float32, 6.3 ms less with bfloat16 weights). Returns the
  state with its stacked layer arrays emptied (the per-layer copies hold the values) and the
  per-layer states, for `CausalLM(..., layer_states=...)`.
  """
  stacked = state["model"]["layers"]
  per_layer = layer_slices(stacked, num_layers)
  hollow = jax.tree.map(lambda a: jnp.zeros((0,), a.dtype), stacked)
  state = nnx.State({**state, "model": nnx.State({**state["model"], "layers": hollow})})
  return state, per_layer
