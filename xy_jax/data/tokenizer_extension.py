"""Vocabulary extension, as XuanYuan-13B/70B extended LLaMA-2's tokenizer with Chinese pieces.

A sentencepiece model is trained on the new corpus (streamed, all cores); every learnt piece the
base model lacks (its characters first, so it can be reached) is appended to the base `ModelProto`
as a normal piece after all existing ones,
so every old piece keeps its id, and the normaliser and special pieces stay as they were. New
pieces score below every base piece, in the order the new model learnt them: the base's merges
keep priority, so text the base already covers tokenizes as before wherever no new piece applies.
Optional padding pieces (type UNUSED, never produced) make the size divide a mesh axis.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator, Sequence

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from xy_jax.data.sources import SkipReport, read_documents
from xy_jax.errors import ConfigError

NORMAL = sp_pb2.ModelProto.SentencePiece.NORMAL
UNUSED = sp_pb2.ModelProto.SentencePiece.UNUSED
# Every 20th document of each file is kept out of training (tokens/char); a file of fewer
# documents is trained on whole and measured in-sample.
HELD_OUT_EVERY = 20


def load_proto(model_file: str) -> sp_pb2.ModelProto:
  proto = sp_pb2.ModelProto()
  with open(model_file, "rb") as f:
    proto.ParseFromString(f.read())
  return proto


def corpus_documents(files: Sequence[str], report: SkipReport) -> Iterator[str]:
  """The training documents of every corpus file (all but the held-out ones), streamed."""
  for path in files:
    for i, doc in enumerate(read_documents(path, report)):
      if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1:
        yield doc


def measured_documents(path: str, report: SkipReport) -> tuple[list[str], bool]:
  """The documents of one file that tokens/char is measured on, and whether they were trained on:
  its held-out ones, or all of them when it is too small to hold any out."""
  held, first = [], []
  for i, doc in enumerate(read_documents(path, report)):
    if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1:
      held.append(doc)
    elif i < HELD_OUT_EVERY:
      first.append(doc)
  return (held, False) if held else (first, True)


def train_pieces(files: Sequence[str], vocab_size: int, model_type: str, report: SkipReport) -> list[str]:
  """The normal pieces of a sentencepiece model trained on `files`, in learnt order."""
  with tempfile.TemporaryDirectory() as d:
    prefix = os.path.join(d, "new")
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus_documents(files, report), model_prefix=prefix, vocab_size=vocab_size,
        model_type=model_type, character_coverage=0.9995, byte_fallback=False, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
        allow_whitespace_only_pieces=True, hard_vocab_limit=False, num_threads=os.cpu_count() or 1,
        minloglevel=2, train_extremely_large_corpus=False)
    proto = load_proto(prefix + ".model")
  return [p.piece for p in proto.pieces if p.type == NORMAL]


@dataclasses.dataclass
class ExtendedVocab:
  proto: sp_pb2.ModelProto
  base_size: int
  new_pieces: list[str]
  padding: int

  @property
  def size(self) -> int:
    return len(self.proto.pieces)


def extend(base_model_file: str, pieces: Sequence[str], count: int | None,
           pad_to_multiple_of: int = 1) -> ExtendedVocab:
  """The base ModelProto with the first `count` (all when None) of `pieces` it lacks appended."""
  proto = load_proto(base_model_file)
  base_size = len(proto.pieces)
  have = {p.piece for p in proto.pieces}
  lowest = min((p.score for p in proto.pieces), default=0.0)
  new = _reachable(pieces, have, count)
  for i, text in enumerate(new):
    piece = proto.pieces.add()
    piece.piece, piece.score, piece.type = text, lowest - 1.0 - i, NORMAL
  padding = -len(proto.pieces) % pad_to_multiple_of
  for i in range(padding):
    piece = proto.pieces.add()
    piece.piece, piece.score, piece.type = f"<unused_{i}>", 0.0, UNUSED
  proto.trainer_spec.vocab_size = len(proto.pieces)
  return ExtendedVocab(proto, base_size, new, padding)


def _reachable(pieces: Sequence[str], have: set[str], count: int | None) -> list[str]:
  """Up to `count` of `pieces` (learnt order) the base lacks, each preceded by those of its
  characters that are no piece yet: a merged piece is only reachable from pieces for its
  characters (a BPE model learns its characters last, so a prefix of its order can lack them)."""
  out: list[str] = []
  added: set[str] = set()
  for piece in dict.fromkeys(pieces):
    if piece in have or piece in added:
      continue
    chars = [c for c in dict.fromkeys(piece) if c not in have and c not in added and c != piece]
    step = chars + [piece]
    if count is not None and len(out) + len(step) > count:
      if len(out) + 1 > count:
        break
      continue
    out += step
    added.update(step)
  return out


def base_pieces_of(base_model_file: str, pieces: Sequence[str]) -> list[list[int]]:
  """The base tokenizer's ids for each piece's text, with no dummy prefix and "▁" as a space."""
  proto = load_proto(base_model_file)
  proto.normalizer_spec.add_dummy_prefix = False
  sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
  return sp.encode([p.replace("\u2581", " ") for p in pieces])


def tokens_per_char(model_file: str | bytes, documents: Sequence[str]) -> float:
  """Tokens per character over `documents` (lower is a better fit)."""
  if isinstance(model_file, bytes):
    sp = spm.SentencePieceProcessor(model_proto=model_file)
  else:
    sp = spm.SentencePieceProcessor(model_file=model_file)
  chars = sum(len(d) for d in documents)
  if not chars:
    raise ConfigError("--corpus: the held-out documents are empty")
  return sum(len(ids) for ids in sp.encode(list(documents))) / chars
