"""Compiled (numba) shingle hashes and MinHash signatures, equal to the Python ones bit for bit:
the shingles of shingles.py (a Han character or a run of other word characters is a unit, units
joined by one space, n at a time), each hashed with xxh64 of its UTF-8 bytes as
MixedScriptMinhashSignature did, and datatrove's signature min((h*a + b) mod 2^64 mod (2^61-1)).

In Python these cost about 0.5 ms for a Chinese document of 1,000 characters (a string, an encode
and a hash call per shingle; 112 x 1,000 products); compiled, a tenth of that. `available()` is
False without numba, and the callers keep the Python path."""

from __future__ import annotations

import numpy as np

try:
  import numba
except ImportError:  # numba is in the `clean` extra; without it the Python path runs
  numba = None

_P1 = np.uint64(11400714785074694791)
_P2 = np.uint64(14029467366897019727)
_P3 = np.uint64(1609587929392839161)
_P4 = np.uint64(9650029242287828579)
_P5 = np.uint64(2870177450012600261)
_MERSENNE = np.uint64((1 << 61) - 1)
_HAN, _SHINGLE = np.uint8(2), np.uint8(128)  # charclass.HAN, charclass.SHINGLE


def available() -> bool:
  return numba is not None


def _rotl(x, r):
  return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _read64(buf, p):
  v = np.uint64(0)
  for i in range(8):
    v |= np.uint64(buf[p + i]) << np.uint64(8 * i)
  return v


def _read32(buf, p):
  v = np.uint64(0)
  for i in range(4):
    v |= np.uint64(buf[p + i]) << np.uint64(8 * i)
  return v


def _round(acc, lane):
  acc = acc + lane * _P2
  acc = _rotl(acc, 31)
  return acc * _P1


def _merge(h, v):
  h ^= _round(np.uint64(0), v)
  return h * _P1 + _P4


def _xxh64(buf, start, end):
  """xxh64 (seed 0) of buf[start:end]."""
  p = start
  length = end - start
  if length >= 32:
    v1 = _P1 + _P2
    v2 = _P2
    v3 = np.uint64(0)
    v4 = np.uint64(0) - _P1
    while p + 32 <= end:
      v1 = _round(v1, _read64(buf, p))
      v2 = _round(v2, _read64(buf, p + 8))
      v3 = _round(v3, _read64(buf, p + 16))
      v4 = _round(v4, _read64(buf, p + 24))
      p += 32
    h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
    h = _merge(h, v1)
    h = _merge(h, v2)
    h = _merge(h, v3)
    h = _merge(h, v4)
  else:
    h = _P5
  h += np.uint64(length)
  while p + 8 <= end:
    h ^= _round(np.uint64(0), _read64(buf, p))
    h = _rotl(h, 27) * _P1 + _P4
    p += 8
  if p + 4 <= end:
    h ^= _read32(buf, p) * _P1
    h = _rotl(h, 23) * _P2 + _P3
    p += 4
  while p < end:
    h ^= np.uint64(buf[p]) * _P5
    h = _rotl(h, 11) * _P1
    p += 1
  h ^= h >> np.uint64(33)
  h *= _P2
  h ^= h >> np.uint64(29)
  h *= _P3
  h ^= h >> np.uint64(32)
  return h


def _utf8(cp, out, q):
  """Writes code point `cp` as UTF-8 at out[q:]; returns the next position."""
  if cp < 0x80:
    out[q] = cp
    return q + 1
  if cp < 0x800:
    out[q] = 0xC0 | (cp >> 6)
    out[q + 1] = 0x80 | (cp & 0x3F)
    return q + 2
  if cp < 0x10000:
    out[q] = 0xE0 | (cp >> 12)
    out[q + 1] = 0x80 | ((cp >> 6) & 0x3F)
    out[q + 2] = 0x80 | (cp & 0x3F)
    return q + 3
  out[q] = 0xF0 | (cp >> 18)
  out[q + 1] = 0x80 | ((cp >> 12) & 0x3F)
  out[q + 2] = 0x80 | ((cp >> 6) & 0x3F)
  out[q + 3] = 0x80 | (cp & 0x3F)
  return q + 4


def _shingle_hashes(cps, table, n):
  """xxh64 of each n-unit shingle of the lower-cased text's code points `cps` (units joined by one
  space, UTF-8); a text of n units or fewer is one shingle of all of them, none has none."""
  joined = np.empty(5 * len(cps) + 1, dtype=np.uint8)
  unit_start = np.empty(len(cps) + 1, dtype=np.int64)
  unit_end = np.empty(len(cps) + 1, dtype=np.int64)
  units = 0
  q = 0
  in_word = False
  for cp in cps:
    flags = table[cp]
    if flags & _HAN:
      if units:
        joined[q] = 32
        q += 1
      unit_start[units] = q
      q = _utf8(cp, joined, q)
      unit_end[units] = q
      units += 1
      in_word = False
    elif flags & _SHINGLE:
      if not in_word:
        if units:
          joined[q] = 32
          q += 1
        unit_start[units] = q
        units += 1
        in_word = True
      q = _utf8(cp, joined, q)
      unit_end[units - 1] = q
    else:
      in_word = False
  if units == 0:
    return np.empty(0, dtype=np.uint64)
  if units <= n:
    out = np.empty(1, dtype=np.uint64)
    out[0] = _xxh64(joined, unit_start[0], unit_end[units - 1])
    return out
  out = np.empty(units - n + 1, dtype=np.uint64)
  for i in range(units - n + 1):
    out[i] = _xxh64(joined, unit_start[i], unit_end[i + n - 1])
  return out


def _signature(hashes, a, b):
  """min over the hashes of ((h * a + b) mod 2^64) mod (2^61 - 1), per permutation (a, b)."""
  k = len(a)
  sig = np.full(k, _MERSENNE, dtype=np.uint64)
  for h in hashes:
    for j in range(k):
      v = h * a[j] + b[j]
      r = (v & _MERSENNE) + (v >> np.uint64(61))  # v mod 2^61-1, as 2^61 = 1 there
      if r >= _MERSENNE:
        r -= _MERSENNE
      if r < sig[j]:
        sig[j] = r
  return sig


if numba is not None:
  _jit = numba.njit(cache=True, nogil=True)
  _rotl, _read64, _read32, _round, _merge, _xxh64, _utf8 = map(_jit, (_rotl, _read64, _read32, _round, _merge,
                                                                     _xxh64, _utf8))
  _shingle_hashes, _signature = _jit(_shingle_hashes), _jit(_signature)


def shingle_hashes(lowered_codepoints: np.ndarray, table: np.ndarray, n: int) -> np.ndarray:
  return _shingle_hashes(lowered_codepoints, table, n)


def signature(hashes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return _signature(hashes, a, b)
