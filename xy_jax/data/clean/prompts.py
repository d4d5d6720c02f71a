"""Exact and near-duplicate removal for short texts: PPO prompts and SFT examples (issue 22, item 4).

The corpus pipeline's machinery, sized for short texts:
- exact: on a canonical form (normalize_text, lower case, punctuation and spacing dropped), so
  "什么是市盈率？" and "什么是市盈率?" are one prompt;
- near: MinHash-LSH with datatrove's signature (MixedScriptMinhashSignature: its hash, permutations
  and seed) on character 3-grams of that form, then each candidate checked on its exact Jaccard
  similarity >= `threshold` (0.7). One edited character changes up to three of a short prompt's
  few 3-grams, so the LSH sits below the checked threshold: 32 bands x 5 rows find a pair at 0.7
  with probability 0.997 (0.64 at 0.5, 0.07 at 0.3); the check drops the rest.
- numbers: texts whose numbers differ are never duplicates. "000001的股价是多少？" and
  "600519的股价是多少？", "2022年营收" and "2023年营收" ask different things, and "本金1000元..."
  and "本金10000元..." share every 3-gram.

Texts are taken in input order; a text is a duplicate of the most similar kept text it meets in
its LSH buckets (so every removed text is at least `threshold` similar to the one kept for it;
there are no chains), else it is kept. Measured limits at 0.7: "请解释期权。" / "请解释期货。" (0.5)
and "什么是市盈率？" / "什么是市净率？" (0.33) stay apart, but in a long question one changed term
can fall above it ("How is the price-to-earnings ratio of a listed company calculated?" vs
"...price-to-book ratio..." is 0.76).

In process rather than on datatrove's executor: a prompt set (hundreds of thousands of short
texts) fits in memory many times over, where the executor's stages write, sort and merge signature
files per bucket on disk; and a candidate can be checked on its text, which datatrove's cluster
stage (signatures only) cannot. datatrove is imported when dedup runs (the `clean` extra).
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from xy_jax.data.sources import SkipReport
from xy_jax.errors import ConfigError

MODES = ("near", "exact", "off")
EXACT, NEAR = "exact duplicate", "near duplicate"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"  # as normalize.CJK
_NON_WORD = re.compile(r"[\W_]+")
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")
_NUMBER = re.compile(r"\d+")
_MERSENNE = np.uint64((1 << 61) - 1)  # datatrove's minhash modulus
SIGNATURE_CHUNK = 2048  # texts per batch: [their n-grams, bands x rows] uint64 products


@dataclasses.dataclass
class PromptDedupSettings:
  mode: str = "near"  # "near": exact and near duplicates; "exact": exact ones only; "off"
  n_grams: int = 3
  threshold: float = 0.7
  bands: int = 32
  rows: int = 5

  def check(self, mode_field: str = "data.dedup_prompts", prefix: str = "") -> None:
    """`prefix` names the other fields in the message (the command line's "--")."""
    if self.mode not in MODES:
      raise ConfigError(f"{mode_field}={self.mode!r} is not one of {', '.join(map(repr, MODES))}")
    for name in ("n_grams", "bands", "rows"):
      if getattr(self, name) < 1:
        raise ConfigError(f"{prefix}{name}={getattr(self, name)}: must be at least 1")
    if not 0 < self.threshold <= 1:
      raise ConfigError(f"{prefix}threshold={self.threshold}: must be in (0, 1]")


@dataclasses.dataclass
class Duplicate:
  index: int
  kept: int  # the index of the text its cluster keeps
  kind: str  # EXACT or NEAR, relative to the kept text
  similarity: float  # Jaccard of character n-grams with the kept text


def _machinery():
  try:
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from xy_jax.data.clean.normalize import normalize_text
    from xy_jax.data.clean.shingles import MixedScriptMinhashSignature
  except ImportError as e:
    raise ConfigError(f"prompt deduplication needs datatrove (pip install -e '.[clean]'), or set "
                      f"data.dedup_prompts='off' ({e})") from None
  return MinhashConfig, normalize_text, MixedScriptMinhashSignature


def canonical(text: str) -> str:
  """What exact dedup compares: normalised, lower case, punctuation and spaces dropped (a space
  kept between Latin words)."""
  _, normalize_text, _ = _machinery()
  return _SPACE_BY_CJK.sub("", _NON_WORD.sub(" ", normalize_text(text).lower()).strip())


def char_shingles(canon: str, n: int) -> set[str]:
  return {canon[i:i + n] for i in range(len(canon) - n + 1)} or {canon}


def jaccard(a: set, b: set) -> float:
  return len(a & b) / len(a | b) if a | b else 1.0


def char_signer(settings: PromptDedupSettings):
  """datatrove's MinHash signature step (its hash, permutations and seed) on character n-grams."""
  config_cls, _, signature_cls = _machinery()

  class CharSignature(signature_cls):
    def get_shingles(self, canon: str) -> np.ndarray:
      grams = sorted(char_shingles(canon, self.config.n_grams))
      return np.fromiter((self._hash_func(g.encode("utf-8")) for g in grams), dtype=np.uint64).reshape((-1, 1))

  config = config_cls(n_grams=settings.n_grams, num_buckets=settings.bands, hashes_per_bucket=settings.rows)
  # Only the signature is used, in process: the step's output folder is never written.
  return CharSignature("unused-in-process", config)


def minhash_signatures(canons: Sequence[str], settings: PromptDedupSettings) -> np.ndarray:
  """[len(canons), bands * rows] MinHash values, min((h * a + b) mod (2^61 - 1)) over each text's
  n-gram hashes h as MinhashDedupSignature.get_signature computes them (tested equal), for
  SIGNATURE_CHUNK texts at a time: called per short text, its array splitting took most of the time."""
  signer = char_signer(settings)
  a, b = signer.parameters
  out = np.empty((len(canons), a.shape[1]), np.uint64)
  for start in range(0, len(canons), SIGNATURE_CHUNK):
    hashes = [signer.get_shingles(c)[:, 0] for c in canons[start:start + SIGNATURE_CHUNK]]
    offsets = np.cumsum([0] + [len(h) for h in hashes[:-1]])  # every text has at least one n-gram
    products = (np.concatenate(hashes)[:, None] * a + b) % _MERSENNE
    out[start:start + len(hashes)] = np.minimum.reduceat(products, offsets, axis=0)
  return out


def find_duplicates(texts: Sequence[str], settings: PromptDedupSettings | None = None) -> list[Duplicate]:
  """The texts to drop (in index order): each an exact or near duplicate of an earlier kept one."""
  settings = settings or PromptDedupSettings()
  settings.check()
  if settings.mode == "off":
    return []
  canon = [canonical(t) for t in texts]
  first = {}
  for i, c in enumerate(canon):
    first.setdefault(c, i)
  kept_of = {i: i for i in first.values()}  # first occurrence -> the kept text it repeats
  grams = {}
  if settings.mode == "near":
    uniques = sorted(first.values())
    signatures = minhash_signatures([canon[i] for i in uniques], settings)
    width = 8 * settings.rows  # bytes of one band
    kept_in = collections.defaultdict(list)  # LSH bucket -> the kept texts in it
    for i, sig in zip(uniques, signatures):
      grams[i] = char_shingles(canon[i], settings.n_grams)
      numbers = tuple(_NUMBER.findall(canon[i]))  # only texts with the same numbers can pair
      raw = sig.tobytes()
      keys = [(band, raw[band * width:(band + 1) * width], numbers) for band in range(settings.bands)]
      best, best_sim, seen = i, 0.0, set()
      for key in keys:
        for k in kept_in.get(key, ()):
          if k in seen:
            continue
          seen.add(k)
          short, long = sorted((len(grams[i]), len(grams[k])))
          if short < settings.threshold * long:  # the Jaccard similarity is at most short / long
            continue
          sim = jaccard(grams[i], grams[k])
          if sim >= settings.threshold and (sim > best_sim or (sim == best_sim and k < best)):
            best, best_sim = k, sim
      kept_of[i] = best
      if best == i:  # kept: later texts are compared with it
        for key in keys:
          kept_in[key].append(i)
  out = []
  for i, c in enumerate(canon):
    kept = kept_of[first[c]]
    if i == kept:
      continue
    same = canon[kept] == c
    out.append(Duplicate(i, kept, EXACT if same else NEAR,
                         1.0 if same else round(jaccard(grams[kept], grams[first[c]]), 3)))
  return out


def dialogue_text(messages) -> str:
  """What dedup compares for a conversation: every turn but the system message, one per line."""
  return "\n".join(m.content for m in messages if m.role != "system")


def drop_duplicates(items: list, texts: Sequence[str], wheres: Sequence[str], report: SkipReport,
                    settings: PromptDedupSettings) -> list:
  """`items` without the duplicates of `texts`; each one dropped goes to `report` as
  `file:line (of file:line): exact duplicate` (or near duplicate)."""
  dups = find_duplicates(texts, settings)
  for d in dups:
    report.skip(f"{wheres[d.index]} (of {wheres[d.kept]})", d.kind)
  dropped = {d.index for d in dups}
  return [item for i, item in enumerate(items) if i not in dropped]
