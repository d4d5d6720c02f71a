"""One lookup table of character classes over every code point, so the counts the quality filter and
the language router need are one vectorised pass over a text's code points instead of a Python loop
per character. Each class is built from the very regex or str method the per-character code used,
so the counts are the same."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import unicodedata

import numpy as np

from xy_jax.data.clean.normalize import CJK

SPACE, HAN, LATIN, SYMBOL, DIGIT, WORD, UNIT, SHINGLE = 1, 2, 4, 8, 16, 32, 64, 128
_BY_REGEX = {
    HAN: f"[{CJK}]",
    LATIN: "[A-Za-z\u00c0-\u024f]",
    SPACE: r"\s",            # sre's \s is str.isspace
    WORD: r"[^\W\d_]",       # a letter of quality._WORD
    UNIT: f"[^\\W{CJK}]",    # a character of a non-Han unit of quality._UNIT
    SHINGLE: f"[^\\W{CJK}_]",  # a character of a non-Han unit of shingles._UNIT
}


def _build() -> np.ndarray:
  every = "".join(map(chr, range(0x110000)))
  flags = np.zeros(0x110000, dtype=np.uint8)
  for bit, pattern in _BY_REGEX.items():
    at = np.fromiter((m.start() for m in re.finditer(pattern, every)), dtype=np.int64)
    flags[at] |= bit
  symbol = np.fromiter((unicodedata.category(c)[0] in "SC" for c in every), dtype=bool, count=0x110000)
  digit = np.fromiter((c.isdigit() for c in every), dtype=bool, count=0x110000)
  flags[symbol] |= SYMBOL
  flags[digit] |= DIGIT
  return flags


@functools.lru_cache(maxsize=None)
def table() -> np.ndarray:
  """uint8 flags for code points 0..0x10FFFF. Building takes seconds, so it is kept under
  ~/.cache/xy_jax, keyed by the Python and Unicode versions and the class definitions."""
  key = hashlib.sha1(repr((sys.version, unicodedata.unidata_version, _BY_REGEX)).encode()).hexdigest()[:16]
  path = os.path.join(os.path.expanduser("~"), ".cache", "xy_jax", f"charclass-{key}.npy")
  try:
    return np.load(path)
  except (OSError, ValueError):
    pass
  flags = _build()
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npy"
    np.save(tmp, flags)
    os.replace(tmp, path)
  except OSError:
    pass  # a read-only home: build it again next time
  return flags


def codepoints(text: str) -> np.ndarray:
  return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def flags_of(text: str) -> np.ndarray:
  return table()[codepoints(text)]


def count(flags: np.ndarray, bit: int) -> int:
  return int(np.count_nonzero(flags & bit))
