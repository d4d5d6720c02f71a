"""Tokenized sources on disk: one memory-mapped token array plus document offsets per source.

    DATA/<source>/tokens.bin     uint16 (vocab < 65536) or uint32, documents back to back,
                                 each stored as [BOS] + ids + [EOS]
    DATA/<source>/offsets.npy    int64 [n_docs + 1]: document i is tokens[offsets[i]:offsets[i+1]]
    DATA/<source>/meta.json      counts, tokenizer digest, input files (path, size, modification
                                 time), settings, skip report

Written by `tools/prepare_data.py` in one streaming pass (both cores tokenize), read by the training
pipeline with random access and no load step. A source is written into a temporary sibling
directory, `meta.json` last, and renamed into place: a reader sees the old source or the new one,
never half of one. `stale_reason` tells when a prepared source no longer matches its inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from xy_jax.data.provenance import cleaning_stale_reason, fingerprint, refuse_stale_cleaning
from xy_jax.data.sources import SkipReport, expand_paths, read_documents
from xy_jax.data.tokenizer import Tokenizer
from xy_jax.io_utils import atomic_output_dir
from xy_jax.errors import ConfigError

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
    meta = read_meta(meta_path)
    if meta is None or not meta.get("n_docs"):
      raise ConfigError(f"data.sources.{name}: {d} is empty or partial; prepare it again")
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


def read_meta(path: str) -> dict | None:
  """A prepared source's meta.json, or None when it is missing, empty or cut short."""
  try:
    with open(path, encoding="utf-8") as f:
      meta = json.load(f)
  except (OSError, ValueError):
    return None
  return meta if isinstance(meta, dict) else None


def stale_reason(root: str, name: str, files: Sequence[str], tokenizer_digest: str,
                 settings: dict[str, Any]) -> str | None:
  """Why `root/name` cannot be used for these inputs (None: it can). `settings` are what else
  shaped the tokens (format, chat template, row length...), compared with the stored ones. Inputs
  that are shards of tools/clean_data.py are checked against the raw text they were cleaned from."""
  d = os.path.join(root, name)
  meta_path = os.path.join(d, "meta.json")
  if not os.path.isdir(d):
    return "not prepared yet"
  cleaning = cleaning_stale_reason(files)
  if cleaning:
    return cleaning
  meta = read_meta(meta_path)
  if meta is None:
    return f"{meta_path} is missing or unreadable (an interrupted preparation?)"
  itemsize = np.dtype(meta.get("dtype", "uint16")).itemsize
  for fname, size in (("tokens.bin", meta.get("n_tokens", -1) * itemsize),
                      ("offsets.npy", None)):
    path = os.path.join(d, fname)
    if not os.path.isfile(path) or (size is not None and os.path.getsize(path) != size):
      return f"{path} is missing or not the size meta.json records (an interrupted preparation?)"
  if meta.get("tokenizer") != tokenizer_digest:
    return f"{d} was tokenized with another tokenizer"
  for key, value in settings.items():
    if meta.get(key) != value:
      return f"{d} was prepared with {key}={meta.get(key)!r}, the config now gives {value!r}"
  if "inputs" not in meta:
    return f"{d} was prepared by an older xy_jax (no input fingerprints)"
  stored = {p: (size, mtime) for p, size, mtime in meta["inputs"]}
  current = {p: (size, mtime) for p, size, mtime in fingerprint(files)}
  for path in sorted(set(stored) | set(current)):
    if path not in stored:
      return f"{path} is a new input file since {d} was prepared"
    if path not in current:
      return f"{path} is no longer an input of the source"
    if stored[path] != current[path]:
      return f"{path} changed since {d} was prepared (size or modification time)"
  return None


class PreparedWriter:
  """Writes one source's documents into a (temporary) directory; `finish` writes meta.json last."""

  def __init__(self, directory: str, vocab_size: int, with_targets: bool = False):
    self.directory = directory
    self.dtype = np.uint16 if vocab_size < 2**16 else np.uint32
    self.tokens = open(os.path.join(directory, "tokens.bin"), "wb")
    self.targets = open(os.path.join(directory, "targets.bin"), "wb") if with_targets else None
    self.lengths: list[int] = []

  def add(self, ids: Sequence[int], targets: Sequence[int] | None = None) -> None:
    try:
      self.tokens.write(np.asarray(ids, self.dtype).tobytes())
      if self.targets is not None:
        self.targets.write(np.asarray(targets, np.uint8).tobytes())
    except OSError as e:  # a failed write() names no file: say which (disk full, quota)
      raise OSError(e.errno, e.strerror, self.tokens.name) from None
    self.lengths.append(len(ids))

  def finish(self, name: str, tokenizer: Tokenizer, inputs: list[list], report: SkipReport,
             **extra) -> dict:
    """Close the arrays and write meta.json; a source left with no document is refused."""
    for f in (self.tokens, self.targets):
      if f is not None:
        f.close()
    if not self.lengths:
      first = f"; first: {report.examples[0]}" if report.examples else ""
      raise ConfigError(f"data.sources.{name}: no document left to train on ({report.summary()}"
                        f"{first})")
    offsets = np.zeros(len(self.lengths) + 1, np.int64)
    np.cumsum(self.lengths, out=offsets[1:])
    np.save(os.path.join(self.directory, "offsets.npy"), offsets)
    meta = {"name": name, "dtype": np.dtype(self.dtype).name, "n_docs": len(self.lengths),
            "n_tokens": int(offsets[-1]), "vocab_size": tokenizer.vocab_size,
            "tokenizer": file_digest(tokenizer.model_file), "inputs": inputs,
            "files": [p for p, _, _ in inputs], "skipped": dict(report.counts),
            "skipped_examples": report.examples, **extra}
    with open(os.path.join(self.directory, "meta.json"), "w", encoding="utf-8") as f:
      json.dump(meta, f, ensure_ascii=False, indent=2)
    return meta


_WORKER_TOK: Tokenizer | None = None


def _init_worker(model_file: str) -> None:
  global _WORKER_TOK
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
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
  """Tokenize every document of a source into `out_root/name` (atomically). Returns the meta."""
  files = expand_paths(patterns, f"data.sources.{name}.paths")
  refuse_stale_cleaning(files, f"data.sources.{name}")
  inputs = fingerprint(files)  # before reading: a file edited meanwhile shows up as changed
  report = SkipReport()
  workers = workers or os.cpu_count() or 1
  with atomic_output_dir(os.path.join(out_root, name), overwrite=True) as tmp:
    writer = PreparedWriter(tmp, tokenizer.vocab_size)
    n_tokens = 0
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                      initargs=(tokenizer.model_file,)) as pool:
      for ids_chunk in pool.imap(_encode_chunk, _chunks(files, report, on_file)):
        for ids in ids_chunk:
          writer.add(ids)
          n_tokens += len(ids)
        if progress:
          progress(len(writer.lengths), n_tokens)
    return writer.finish(name, tokenizer, inputs, report, format="text")
