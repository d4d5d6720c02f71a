"""The one attention entry point: causal + segment-id masking over a pluggable kernel.

Packed rows carry `segment_ids` (0 = padding); a query sees a key only in the same segment and at
or before its own index. The same rule serves training (packed rows), prefill of left-padded
prompts and KV-cache decoding (`q_offset` = the cache index of the first query).

Kernels: "xla" (dense, everywhere), "cudnn" (flash attention on GPU; packed rows go to it as
per-document offsets and lengths, see `cudnn_packed_attention`), "splash" (the Pallas TPU splash-attention kernel with segment ids,
run per shard under `shard_map`; on other platforms it runs in Pallas interpret mode, for tests).
"auto" picks splash on TPU, cudnn on GPU in 16-bit, xla otherwise; splash serves self-attention
over whole rows of a multiple of 128 tokens (training, scoring); decoding and shorter rows fall
back to xla.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P


def resolve_impl(impl: str, dtype, platform: str | None = None) -> str:
  """`platform` is the mesh's device platform (for AOT plans it differs from the host's)."""
  if impl != "auto":
    return impl
  platform = platform or jax.default_backend()
  if platform == "tpu":
    return "splash"
  return "cudnn" if platform == "gpu" and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16) else "xla"


@functools.lru_cache(maxsize=64)
def _splash_kernel(heads: int, q_len: int, kv_len: int, interpret: bool):
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as sm
  mask = sm.MultiHeadMask([sm.CausalMask((q_len, kv_len)) for _ in range(heads)])
  bq, bkv = min(512, q_len), min(512, kv_len)
  blocks = sk.BlockSizes(block_q=bq, block_kv=bkv, block_kv_compute=bkv, block_q_dkv=bq,
                         block_kv_dkv=bkv, block_kv_dkv_compute=bkv, block_q_dq=bq, block_kv_dq=bkv)
  return sk.make_splash_mha(mask, block_sizes=blocks, head_shards=1, q_seq_shards=1,
                            interpret=interpret)


def splash_attention(q, k, v, q_segment_ids, kv_segment_ids, *, mesh=None, batch_axes=None,
                     head_axes=None, kv_head_axes=None, interpret: bool = False) -> jax.Array:
  """Causal self-attention with segment ids through the splash kernel. q [B,T,N,H], k/v [B,T,K,H].

  Under a mesh the kernel runs per shard (`shard_map`): rows split over `batch_axes`, query and kv
  heads over `head_axes` / `kv_head_axes` (HF's head order keeps each shard's query heads with
  their kv heads).
  """
  from jax.experimental.pallas.ops.tpu.splash_attention.splash_attention_kernel import SegmentIds
  scale = q.shape[-1] ** -0.5
  qt = jnp.swapaxes(q * jnp.asarray(scale, q.dtype), 1, 2)  # [B, N, T, H]
  kt, vt = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)

  def local(qt, kt, vt, sq, skv):
    kernel = _splash_kernel(qt.shape[1], qt.shape[2], kt.shape[2], interpret)
    segs = SegmentIds(sq.astype(jnp.int32), skv.astype(jnp.int32))
    return jax.vmap(lambda a, b, c, d: kernel(a, b, c, segment_ids=d))(qt, kt, vt, segs)

  if mesh is None:
    out = local(qt, kt, vt, q_segment_ids, kv_segment_ids)
  else:
    rows = P(batch_axes, None)
    out = jax.shard_map(
        local, mesh=mesh,
        in_specs=(P(batch_axes, head_axes, None, None), P(batch_axes, kv_head_axes, None, None),
                  P(batch_axes, kv_head_axes, None, None), rows, rows),
        out_specs=P(batch_axes, head_axes, None, None), check_vma=False,
    )(qt, kt, vt, q_segment_ids, kv_segment_ids)
  return jnp.swapaxes(out, 1, 2)


# Segments per row the packed cudnn kernel is compiled for. cuDNN launches work for every slot
# whether used or not, so this stays small; the XuanYuan2 buckets put long documents in long rows,
# so rows rarely hold more (those that do take the dense-mask kernel, see below).
CUDNN_MAX_SEGMENTS = 32


def packed_offsets(segment_ids: jax.Array, max_segments: int):
  """[B, T] segment ids (0 = padding; a document is one contiguous run of one id) -> cudnn's
  packed layout: offsets [B, M+1] and lengths [B, M] of each run (-1 in unused slots), and the
  number of runs per row [B]. A row with more than M runs has its extra runs cut off here."""
  b, t = segment_ids.shape
  prev = jnp.pad(segment_ids[:, :-1], ((0, 0), (1, 0)))
  nxt = jnp.pad(segment_ids[:, 1:], ((0, 0), (0, 1)))
  live = segment_ids > 0
  starts_mask, ends_mask = live & (segment_ids != prev), live & (segment_ids != nxt)

  def first_m(mask_row):
    return jnp.nonzero(mask_row, size=max_segments, fill_value=-1)[0].astype(jnp.int32)

  starts, ends = jax.vmap(first_m)(starts_mask), jax.vmap(first_m)(ends_mask)
  lengths = jnp.where(starts >= 0, ends - starts + 1, -1)
  offsets = jnp.concatenate([starts, jnp.full((b, 1), -1, jnp.int32)], axis=1)
  return offsets, lengths, jnp.sum(starts_mask, axis=1)


def cudnn_packed_attention(q, k, v, segment_ids, max_segments: int = CUDNN_MAX_SEGMENTS):
  """Causal self-attention over packed rows on cuDNN's flash kernel, without a dense mask.

  The public `jax.nn.dot_product_attention` takes only one length per row, so a segment mask
  would reach cuDNN as a dense [T, T] bias: read in full, nothing skipped. jax's own cuDNN
  wrapper under it takes packed documents as offsets + lengths (its "packed layout", Hopper and
  later). That wrapper is private API (`jax._src.cudnn.fused_attention_stablehlo`), so it is
  called from here alone; if its signature moves, this is the one place to follow it. A batch
  holding a row of more than `max_segments` documents takes the dense-mask kernel instead
  (`lax.cond`: one branch runs), so the result never depends on the bound.
  """
  from jax._src.cudnn import fused_attention_stablehlo as cudnn_sdpa
  offsets, lengths, count = packed_offsets(segment_ids, max_segments)
  scale = q.shape[-1] ** -0.5

  def packed(q, k, v):
    return cudnn_sdpa.dot_product_attention(
        q, k, v, q_seqlen=lengths, kv_seqlen=lengths, q_offsets=offsets, kv_offsets=offsets,
        scale=scale, mask_type=cudnn_sdpa.MaskType.PADDING_CAUSAL)

  def dense(q, k, v):
    mask = attention_mask(segment_ids, segment_ids)
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="cudnn")

  out = jax.lax.cond(jnp.max(count) <= max_segments, packed, dense, q, k, v)
  # cuDNN leaves padding positions unwritten in the packed layout; the dense kernels give zeros.
  return jnp.where((segment_ids > 0)[:, :, None, None], out, jnp.zeros((), out.dtype))


def reference_attention(q, k, v, q_segment_ids, kv_segment_ids, q_offset: jax.Array | int = 0):
  """float32 dense softmax with the segment + causal mask: what every kernel is checked against.
  Padding (id 0) attends among itself as in the dense kernels; compare documents' positions only."""
  mask = attention_mask(q_segment_ids, kv_segment_ids, q_offset)
  g = q.shape[2] // k.shape[2]
  kf = jnp.repeat(k.astype(jnp.float32), g, axis=2)  # HF's head order: kv head outer
  vf = jnp.repeat(v.astype(jnp.float32), g, axis=2)
  s = jnp.einsum("btnh,bsnh->bnts", q.astype(jnp.float32), kf) * q.shape[-1] ** -0.5
  w = jax.nn.softmax(jnp.where(mask, s, -1e30), axis=-1) * jnp.any(mask, -1, keepdims=True)
  return jnp.einsum("bnts,bsnh->btnh", w, vf)


def attention_mask(q_segment_ids: jax.Array, kv_segment_ids: jax.Array,
                   q_offset: jax.Array | int = 0) -> jax.Array:
  """[B, T] and [B, S] segment ids -> boolean mask [B, 1, T, S]."""
  t, s = q_segment_ids.shape[1], kv_segment_ids.shape[1]
  same = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]
  causal = jnp.arange(s)[None, :] <= (q_offset + jnp.arange(t))[:, None]
  return (same & causal[None])[:, None]


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, q_segment_ids: jax.Array,
                          kv_segment_ids: jax.Array, q_offset: jax.Array | int = 0,
                          impl: str = "auto", sharding=None) -> jax.Array:
  """q [B,T,N,H], k/v [B,S,K,H] (N = K*G, K outer as in HF) -> [B,T,N,H].

  `sharding` (a LogicalSharding) gives the mesh: its platform picks the "auto" kernel, and splash
  runs per shard over it."""
  mesh = getattr(sharding, "mesh", None)
  platform = sharding.platform if sharding is not None else None
  impl = resolve_impl(impl, q.dtype, platform)
  # The kernel tiles rows in blocks of 128 or more (a TPU constraint).
  splash_ok = (q.shape[1] == k.shape[1] and q.shape[1] % 128 == 0 and isinstance(q_offset, int)
               and q_offset == 0)
  if impl == "splash" and splash_ok:
    axes = {} if mesh is None else dict(
        batch_axes=sharding.spec(("act_batch",))[0], head_axes=sharding.spec(("act_heads",))[0],
        kv_head_axes=sharding.spec(("act_kv_heads",))[0])
    return splash_attention(q, k, v, q_segment_ids, kv_segment_ids, mesh=mesh,
                            interpret=(platform or jax.default_backend()) != "tpu", **axes)
  if impl == "splash":
    impl = "xla"  # decoding (queries offset into a cache) and rows shorter than a kernel block
  mask = attention_mask(q_segment_ids, kv_segment_ids, q_offset)
  if impl == "xla":
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="xla")
  if impl == "cudnn":
    if q.shape[1] == k.shape[1] and isinstance(q_offset, int) and q_offset == 0:
      return cudnn_packed_attention(q, k, v, q_segment_ids)
    # Decoding (queries offset into a cache): a dense mask, a single query row per step.
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="cudnn")
  raise ValueError(f"model.attention_impl={impl!r}: unknown attention implementation")
