"""Log-likelihood of each answer letter, as lm-evaluation-harness's HF backend computes it, with one
forward pass per question instead of one per letter.

Per (context, continuation) the tokens are lm-eval's `_encode_pair`: trailing spaces of the
context move to the continuation, `context_enc = [BOS] + encode(context)`, `continuation_enc =
([BOS] + encode(context + continuation))[len(context_enc):]`; the scored sequence is
`(context_enc + continuation_enc)[-(max_len + 1):]`, its input all but the last token, and the
log-likelihood the sum of log-softmax over the continuation's tokens. The four letters of a question
usually share everything but their last token (" A" -> "▁", "A"): then one row holds the shared
input and the four letters are read off its last position; otherwise each letter gets its row.

The questions of one subject share their description and few-shot examples, most of each prompt:
that common token prefix runs once per subject into a KV cache, and each question's row runs only
its own suffix against it (causal attention makes the two the same computation). Rows are grouped
into power-of-two length buckets (one compile each), batched to about `batch_tokens` tokens,
sharded over the mesh's batch axes, and only the scored positions go through the LM head.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding

from xy_jax.data.tokenizer import Tokenizer
from xy_jax.models.llama import KVCache
from xy_jax.sharding import LogicalSharding

MIN_BUCKET = 32


@dataclasses.dataclass
class Row:
  question: int
  tokens: list[int]  # the model's input
  entries: list[tuple[int, int, int]]  # (letter, position whose logits score it, target token)
  group: str = ""  # rows of one group (a subject) may share a prompt prefix
  truncated: bool = False  # cut on the left to fit the model: shares no prefix


def encode_pair(tok: Tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
  n_spaces = len(context) - len(context.rstrip())
  if n_spaces:
    context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
  whole = tok.encode(context + continuation, bos=True)
  context_enc = tok.encode(context, bos=True)
  return context_enc, whole[len(context_enc):]


def question_rows(question: int, sequences: Sequence[tuple[list[int], list[int]]],
                  max_len: int, group: str = "") -> list[Row]:
  """Rows scoring every continuation of one question: one shared row when the sequences differ
  only in their last token, else one row per continuation."""
  truncated = any(len(ctx + cont) > max_len + 1 for ctx, cont in sequences)
  full = [(ctx + cont)[-(max_len + 1):] for ctx, cont in sequences]
  n_cont = [len(cont) for _, cont in sequences]

  def entries(letter, seq):
    return [(letter, j - 1, seq[j]) for j in range(len(seq) - n_cont[letter], len(seq))]

  shared = full[0][:-1]
  if all(len(s) == len(full[0]) and s[:-1] == shared for s in full):
    return [Row(question, shared, [e for letter, s in enumerate(full) for e in entries(letter, s)],
                group, truncated)]
  return [Row(question, s[:-1], entries(letter, s), group, truncated) for letter, s in enumerate(full)]


def shared_prefixes(rows: Sequence[Row], min_length: int = MIN_BUCKET) -> list[tuple[list[int], list[Row]]]:
  """(prefix, rows) pairs: each group's rows with the token prefix they all share taken off (their
  tokens and entry positions now relative to it), and ([], rows) for the rest (truncated rows,
  groups whose common prefix is shorter than `min_length`). A prefix never reaches a scored
  position, so every row keeps at least one token of its own."""
  groups: dict[str, list[Row]] = {}
  rest = []
  for r in rows:
    (rest if r.truncated else groups.setdefault(r.group, [])).append(r)
  out = []
  for members in groups.values():
    if len(members) < 2:
      rest += members
      continue
    first = members[0].tokens
    n = min(min(e[1] for e in r.entries) for r in members)  # the earliest scored position
    for r in members[1:]:
      n = next((i for i in range(n) if r.tokens[i] != first[i]), n)
    if n < min_length:
      rest += members
      continue
    out.append((first[:n], [Row(r.question, r.tokens[n:], [(l, p - n, t) for l, p, t in r.entries],
                                r.group) for r in members]))
  if rest:
    out.append(([], rest))
  return out


def bucket_length(n: int, max_len: int) -> int:
  return min(max_len, max(MIN_BUCKET, 1 << (n - 1).bit_length()))


class LoglikScorer:
  """Scores rows with a model's parameters (passed per call: the live training state works)."""

  def __init__(self, graphdef, sharding: LogicalSharding, pad_id: int, max_len: int,
               batch_tokens: int = 16384):
    self.graphdef, self.pad_id, self.max_len = graphdef, pad_id, max_len
    self.batch_tokens = batch_tokens
    mesh = sharding.mesh
    self.data_parallel = mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
    self.batch_sharding = NamedSharding(mesh, sharding.spec(("act_batch",)))
    self._score = jax.jit(self._score_impl)
    self._prefill = jax.jit(self._prefill_impl, static_argnums=3)
    self._score_suffix = jax.jit(self._suffix_impl)

  @staticmethod
  def _letters(model, hidden, gather_pos, gather_tok):
    """log-softmax at the gathered positions for the gathered tokens (only those go through the head)."""
    picked = jnp.take_along_axis(hidden, gather_pos[..., None], axis=1)  # [B, K, D]
    logits = model.lm_head("BTD,DV->BTV", picked, out_dtype=jnp.float32)
    target = jnp.take_along_axis(logits, gather_tok[..., None], axis=-1)[..., 0]
    return target - jax.nn.logsumexp(logits, axis=-1)

  def _score_impl(self, params, tokens, positions, segment_ids, gather_pos, gather_tok):
    model = nnx.merge(self.graphdef, params)
    hidden, _ = model.model(tokens, positions, segment_ids)
    return self._letters(model, hidden, gather_pos, gather_tok)

  def _prefill_impl(self, params, tokens, segment_ids, cache_length: int):
    """A prompt prefix (one copy per data-parallel shard) into a KV cache of `cache_length` slots."""
    model = nnx.merge(self.graphdef, params)
    cache = KVCache.empty(model.model.cfg, tokens.shape[0], cache_length)
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1], dtype=jnp.int32), tokens.shape)
    return model.model(tokens, positions, segment_ids, cache)[1]

  def _suffix_impl(self, params, cache, tokens, positions, segment_ids, gather_pos, gather_tok):
    model = nnx.merge(self.graphdef, params)
    copies = tokens.shape[0] // cache.segment_ids.shape[0]
    cache = KVCache(jnp.tile(cache.k, (1, copies, 1, 1, 1)), jnp.tile(cache.v, (1, copies, 1, 1, 1)),
                    jnp.tile(cache.segment_ids, (copies, 1)), cache.index)
    hidden, _ = model.model(tokens, positions, segment_ids, cache)
    return self._letters(model, hidden, gather_pos, gather_tok)

  def _device(self, array: np.ndarray) -> jax.Array:
    per_process = len(array) // jax.process_count()
    lo = jax.process_index() * per_process
    return jax.make_array_from_process_local_data(self.batch_sharding, array[lo:lo + per_process])

  def score(self, params, rows: Sequence[Row], num_questions: int,
            progress: Callable[[int], None] = lambda n: None) -> np.ndarray:
    """[num_questions, 4] summed log-likelihoods; `progress(n)` after each batch (questions done)."""
    out = np.zeros((num_questions, 4), np.float64)
    width = -(-max(len(r.entries) for r in rows) // 4) * 4
    unit = self.data_parallel * jax.process_count()
    remaining: dict[int, int] = {}
    for r in rows:
      remaining[r.question] = remaining.get(r.question, 0) + 1
    for prefix, group in shared_prefixes(rows):
      by_bucket: dict[int, list[Row]] = {}
      for r in sorted(group, key=lambda r: len(r.tokens)):
        by_bucket.setdefault(bucket_length(len(r.tokens), self.max_len), []).append(r)
      cache = None
      if prefix:  # one pass over the shared prefix, padded to a bucket; its pad slots are masked
        plen = bucket_length(len(prefix), self.max_len)
        tokens = np.full((unit, plen), self.pad_id, np.int32)
        tokens[:, :len(prefix)] = prefix
        segments = np.broadcast_to((np.arange(plen) < len(prefix)).astype(np.int32), (unit, plen))
        cache = self._prefill(params, self._device(tokens), self._device(np.ascontiguousarray(segments)),
                              plen + max(by_bucket))
      for length, bucket_rows in by_bucket.items():
        per_batch = max(unit, (self.batch_tokens // (length + (plen if prefix else 0))) // unit * unit)
        for start in range(0, len(bucket_rows), per_batch):
          chunk = bucket_rows[start:start + per_batch]
          arrays = self._batch(chunk, per_batch, length, width, len(prefix))
          if prefix:
            logp = self._score_suffix(params, cache, *(self._device(a) for a in arrays))
          else:
            logp = self._score(params, *(self._device(a) for a in arrays))
          logp = np.asarray(logp if logp.is_fully_addressable
                            else multihost_utils.process_allgather(logp, tiled=True))
          done = 0
          for i, r in enumerate(chunk):
            for k, (letter, _, _) in enumerate(r.entries):
              out[r.question, letter] += logp[i, k]
            remaining[r.question] -= 1
            done += remaining[r.question] == 0
          progress(done)
    return out

  def _batch(self, chunk: Sequence[Row], rows: int, length: int, width: int, offset: int):
    """tokens, positions, segment ids [rows, length] and gather positions/tokens [rows, width];
    positions continue after a prefix of `offset` tokens."""
    tokens = np.full((rows, length), self.pad_id, np.int32)
    segments = np.zeros((rows, length), np.int32)
    pos = np.zeros((rows, width), np.int32)
    tgt = np.zeros((rows, width), np.int32)
    for i, r in enumerate(chunk):
      tokens[i, :len(r.tokens)] = r.tokens
      segments[i, :len(r.tokens)] = 1
      for k, (_, p, t) in enumerate(r.entries):
        pos[i, k], tgt[i, k] = p, t
    positions = np.broadcast_to(offset + np.arange(length, dtype=np.int32), (rows, length))
    return tokens, np.ascontiguousarray(positions), segments, pos, tgt
