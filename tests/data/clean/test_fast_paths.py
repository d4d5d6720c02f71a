"""The curation speed-ups (charclass tables, re-ordered regexes, PII gates, compiled MinHash) give
the same results as the plain implementations they replaced (tests/data/clean/reference_*.py)."""

import random

import numpy as np
import pytest
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

from tests.data.clean import corpus, reference_normalize, reference_pii, reference_quality
from xy_jax.data.clean import fast_minhash, normalize, pii, quality, synthetic
from xy_jax.data.clean.language import detect_language
from xy_jax.data.clean.shingles import MixedScriptMinhashSignature, shingles

SOUP = list(" \t\n\r\u3000\u00a0\u2003\u202f\u200b\ufeff\x07,!?:;()，！？：；（）。、“”《》ＡＢ１２ａ中国市场ab_1İſ\u0301ﬁ①"
            "é\U00020001@.-+0123456789X")


def _texts(n_soup=3000):
  rng = random.Random(0)
  texts = [r["text"] for r in synthetic.shard_records(3, 0, 1500)]
  texts += [corpus.zh_doc(rng) for _ in range(50)] + [corpus.en_doc(rng) for _ in range(50)] + corpus.junk(rng)
  texts += ["".join(rng.choice(SOUP) for _ in range(rng.randint(0, 60))) for _ in range(n_soup)]
  words = ["ab", "中", "国", "x_y", "İ", "12", "ß"]
  texts += [" ".join([rng.choice(words) for _ in range(rng.randint(1, 40))] * rng.randint(1, 4)) for _ in range(300)]
  return texts


def test_normalize_and_pii_as_before():
  for text in _texts():
    assert normalize.normalize_text(text) == reference_normalize.normalize_text(text), repr(text)
    assert pii.mask_pii(text) == reference_pii.mask_pii(text), repr(text)


def test_quality_as_before():
  for text in filter(None, map(normalize.normalize_text, _texts())):
    for language in {detect_language(text), "zh", "en"}:
      got = quality.quality_reason(text, language, quality.DEFAULT_THRESHOLDS)
      assert got == reference_quality.quality_reason(text, language, reference_quality.DEFAULT_THRESHOLDS), repr(text)


@pytest.mark.skipif(not fast_minhash.available(), reason="numba is not installed")
def test_compiled_minhash_as_python(tmp_path):
  ours = MixedScriptMinhashSignature(str(tmp_path / "a"), MinhashConfig())
  stock = MinhashDedupSignature.__new__(MinhashDedupSignature)  # only its get_signature, no tokenizer
  stock.config, stock._parameters, stock.num_hashes = ours.config, None, ours.num_hashes
  import xxhash
  for text in _texts(1000):
    python = np.fromiter((xxhash.xxh64_intdigest(s.encode()) for s in shingles(text, 5)), dtype=np.uint64)
    compiled = ours.get_shingles(text)
    assert np.array_equal(compiled.ravel(), python), repr(text)
    if python.size:
      assert ours.get_signature(compiled) == stock.get_signature(python.reshape(-1, 1))
