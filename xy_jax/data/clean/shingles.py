"""MinHash near-dedup shingles that work on Chinese: each Han character is a unit, each Latin word
(or run of digits) is one, so Chinese gives character n-grams, English word n-grams and mixed text
a mix. datatrove's own word tokenizer for "zh" (spaCy's multi-language one) does not segment
Chinese and found none of 26 planted Chinese near-duplicates; these shingles found all of them."""

from __future__ import annotations

import re

import numpy as np
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import create_hash_func

from xy_jax.data.clean import charclass, fast_minhash
from xy_jax.data.clean.normalize import CJK

_UNIT = re.compile(f"[{CJK}]|[^\\W{CJK}_]+")


def shingle_units(text: str) -> list[str]:
  return _UNIT.findall(text.lower())


def shingles(text: str, n: int) -> list[str]:
  """The text's unit n-grams; a text shorter than n units is one shingle (so it still dedups)."""
  units = shingle_units(text)
  if len(units) <= n:
    return [" ".join(units)] if units else []
  return [" ".join(units[i:i + n]) for i in range(len(units) - n + 1)]


def jaccard(a: str, b: str, n: int = 5) -> float:
  sa, sb = set(shingles(a, n)), set(shingles(b, n))
  return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def lsh_threshold(bands: int, rows: int) -> float:
  """The similarity at which a pair is found with probability about 1/2: (1/b)^(1/r)."""
  return (1 / bands) ** (1 / rows)


def detection_probability(s: float, bands: int, rows: int) -> float:
  return 1 - (1 - s ** rows) ** bands


class MixedScriptMinhashSignature(MinhashDedupSignature):
  """datatrove's MinHash stage 1 with CJK-aware shingles; stages 2-4 are datatrove's unchanged.

  Defaults as FineWeb: 5-grams, 14 bands x 8 rows, so pairs above a Jaccard similarity of about
  (1/14)^(1/8) ≈ 0.72 are found with high probability (0.92 at 0.8, 0.06 at 0.5)."""

  name = "minhash signatures (mixed-script shingles)"

  def __init__(self, output_folder: str, config: MinhashConfig | None = None):
    # MinhashDedupSignature.__init__ loads a word tokenizer (spaCy) that these shingles do not
    # use, so its fields are set here instead.
    PipelineStep.__init__(self)
    self.output_folder = get_datafolder(output_folder)
    self.config = config or MinhashConfig()
    self.num_hashes = self.config.num_buckets * self.config.hashes_per_bucket
    self._parameters = None
    self._hash_func = create_hash_func(self.config.hash_config)
    self.language = "mixed"
    self.word_tokenizer = None
    self.skip_existing_sigs = False

  def get_shingles(self, text: str) -> np.ndarray:
    if self._compiled():
      return fast_minhash.shingle_hashes(charclass.codepoints(text.lower()), charclass.table(),
                                         self.config.n_grams).reshape((-1, 1))
    return np.fromiter((self._hash_func(s.encode("utf-8")) for s in shingles(text, self.config.n_grams)),
                       dtype=np.uint64).reshape((-1, 1))

  def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
    if not self._compiled():
      return super().get_signature(shingles)
    a, b = self.parameters
    sig = fast_minhash.signature(shingles.reshape(-1), a.reshape(-1), b.reshape(-1))
    return sig.reshape(self.config.num_buckets, -1).tolist()

  def _compiled(self) -> bool:
    """The numba path computes the same values; it covers datatrove's default hash (xxh64, 64 bits)."""
    h = self.config.hash_config
    return fast_minhash.available() and (h.hash_fc, h.precision) == ("xxhash", 64)
