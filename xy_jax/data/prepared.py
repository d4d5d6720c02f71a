"""Tokenized sources on disk: one memory-mapped token array plus document offsets per source.

    DATA/<source>/tokens.bin     uint16 (vocab < 65536) or uint32, documents back to back,
                                 each stored as [BOS] + ids + [EOS]
    DATA/<source>/offsets.npy    int64 [n_docs + 1]: document i is tokens[offsets[i]:offsets[i+1]]
    DATA/<source>/meta.json      counts, tokenizer digest, input files, skip report

Written by `tools/prepare_data.py` in one streaming pass (both cores tokenize), read by the training
pipeline with random access and no load step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from xy_jax.data.sources import SkipReport, expand_paths, read_documents
from xy_jax.data.tokenizer import Tokenizer
from xy_jax.models.model_config import ConfigError

CHUNK_DOCS = 512


def file_digest(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]


@dataclasses.dataclass
class PreparedSource:
  name: str
  tokens: np.ndarray  # memmap
  offsets: np.ndarray
  meta: dict
  targets: np.ndarray | None = None  # SFT sources: 1 on answer tokens (memmap, uint8)

  @classmethod
  def open(cls, root: str, name: str) -> "PreparedSource":
    d = os.path.join(root, name)
    meta_path = os.path.join(d, "meta.json")
    if not os.path.isfile(meta_path):
      raise ConfigError(f"data.sources.{name}: {meta_path} not found; run tools/prepare_data.py first")
    with open(meta_path) as f:
      meta = json.load(f)
    tokens = np.memmap(os.path.join(d, "tokens.bin"), dtype=meta["dtype"], mode="r")
    offsets = np.load(os.path.join(d, "offsets.npy"), mmap_mode="r")
    targets_path = os.path.join(d, "targets.bin")
    targets = np.memmap(targets_path, dtype=np.uint8, mode="r") if os.path.isfile(targets_path) else None
    return cls(name, tokens, offsets, meta, targets)

  @property
  def num_docs(self) -> int:
    return len(self.offsets) - 1

  def lengths(self) -> np.ndarray:
    return np.diff(np.asarray(self.offsets)).astype(np.int64)

  def slice(self, doc: int, start: int, length: int) -> np.ndarray:
    base = int(self.offsets[doc]) + start
    return np.asarray(self.tokens[base:base + length])

  def target_slice(self, doc: int, start: int, length: int) -> np.ndarray | None:
    if self.targets is None:
      return None
    base = int(self.offsets[doc]) + start
    return np.asarray(self.targets[base:base + length])


_WORKER_TOK: Tokenizer | None = None


def _init_worker(model_file: str) -> None:
  global _WORKER_TOK
  _WORKER_TOK = Tokenizer(model_file)


def _encode_chunk(texts: list[str]) -> list[list[int]]:
  assert _WORKER_TOK is not None
  return _WORKER_TOK.encode_batch(texts, bos=True, eos=True)


def _chunks(files: Sequence[str], report: SkipReport, on_file: Callable[[str], None]) -> Iterator[list[str]]:
  chunk: list[str] = []
  for path in files:
    on_file(path)
    for text in read_documents(path, report):
      chunk.append(text)
      if len(chunk) >= CHUNK_DOCS:
        yield chunk
        chunk = []
  if chunk:
    yield chunk


def prepare_source(name: str, patterns: Sequence[str] | str, out_root: str, tokenizer: Tokenizer,
                   workers: int | None = None, progress: Callable[[int, int], None] | None = None,
                   on_file: Callable[[str], None] = lambda _: None) -> dict:
  """Tokenize every document of a source into `out_root/name`. Returns the meta dict."""
  files = expand_paths(patterns, f"data.sources.{name}.paths")
  out = os.path.join(out_root, name)
  os.makedirs(out, exist_ok=True)
  dtype = np.uint16 if tokenizer.vocab_size < 2**16 else np.uint32
  report = SkipReport()
  lengths: list[int] = []
  n_tokens = 0
  workers = workers or os.cpu_count() or 1
  tmp_tokens = os.path.join(out, "tokens.bin.partial")
  with open(tmp_tokens, "wb") as f, mp.get_context("spawn").Pool(
      workers, initializer=_init_worker, initargs=(tokenizer.model_file,)) as pool:
    for ids_chunk in pool.imap(_encode_chunk, _chunks(files, report, on_file)):
      for ids in ids_chunk:
        f.write(np.asarray(ids, dtype).tobytes())
        lengths.append(len(ids))
        n_tokens += len(ids)
      if progress:
        progress(len(lengths), n_tokens)
  os.replace(tmp_tokens, os.path.join(out, "tokens.bin"))
  offsets = np.zeros(len(lengths) + 1, np.int64)
  np.cumsum(lengths, out=offsets[1:])
  np.save(os.path.join(out, "offsets.npy"), offsets)
  meta = {"name": name, "dtype": np.dtype(dtype).name, "n_docs": len(lengths), "n_tokens": n_tokens,
          "vocab_size": tokenizer.vocab_size, "tokenizer": file_digest(tokenizer.model_file),
          "files": files, "skipped": dict(report.counts), "skipped_examples": report.examples}
  with open(os.path.join(out, "meta.json"), "w") as f:
    json.dump(meta, f, ensure_ascii=False, indent=2)
  return meta
