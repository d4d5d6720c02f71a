"""Quality filters with per-language thresholds; Chinese is measured in characters, Latin-script
text in words (Gopher's word-length rules would drop all Chinese: a jieba word averages 1.7 chars)."""

from __future__ import annotations

import dataclasses
import functools
import re
import string

import numpy as np
from datatrove.pipeline.filters.base_filter import BaseFilter

from xy_jax.data.clean import charclass
from xy_jax.data.clean.notes import Notes
from xy_jax.errors import ConfigError

# Counted through charclass's table: an English length is the number of words (runs of
# [^\W\d_]); the units of the repeated n-gram rules are [CJK]|[^\W{CJK}]+ of the lower-cased text.
_WORDS = re.compile(f"[^\\W{charclass.CJK}]+")
BOILERPLATE = re.compile(
    r"(版权所有|all rights reserved|copyright ©|©|免责声明|点击(这里|此处|查看|关注)|扫一扫|"
    r"关注(我们|公众号)|上一篇|下一篇|返回(顶部|首页)|cookie|javascript|privacy policy|"
    r"terms of (use|service)|log ?in|sign ?up|subscribe|登录|注册|分享到)", re.IGNORECASE)


# BOILERPLATE ignores case, which makes sre slow (0.2 ms a document); its lower-case twin searched
# in lower-cased text, with the characters that IGNORECASE also takes for an ASCII letter (the long
# s, the Kelvin sign, ...) folded first, finds every text it finds and more: a cheap first look.
_BOILERPLATE_LOWER = re.compile(BOILERPLATE.pattern.lower())


@functools.lru_cache(maxsize=None)
def _ascii_folds() -> dict[int, str]:
  every = "".join(map(chr, range(0x110000)))
  folds = {}
  for m in re.finditer("[a-z]", every, re.IGNORECASE):
    c = m.group()
    if c.lower() not in string.ascii_lowercase or len(c.lower()) != 1:
      folds[ord(c)] = next(a for a in string.ascii_lowercase if re.fullmatch(a, c, re.IGNORECASE))
  return folds


@functools.lru_cache(maxsize=None)
def _has_fold():
  return re.compile("[" + "".join(map(chr, _ascii_folds())) + "]")


def _maybe_boilerplate(text: str) -> bool:
  if _has_fold().search(text):  # rare: translate looks up every character
    text = text.translate(_ascii_folds())
  return _BOILERPLATE_LOWER.search(text.lower()) is not None


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """One language's limits. Lengths: Chinese characters for "zh", words for "en"."""

  min_length: int
  max_length: int
  min_script_share: float      # Han (zh) or Latin letters (en) among non-space characters
  max_dup_line_frac: float     # lines that repeat an earlier line
  max_dup_para_frac: float     # paragraphs that repeat an earlier one
  max_top_2gram_frac: float    # characters covered by the most frequent unit 2-gram
  max_dup_ngram_frac: float    # characters inside a repeated unit `dup_n`-gram
  dup_n: int
  max_symbol_frac: float       # characters that are neither letters, digits, spaces nor punctuation
  max_digit_frac: float
  max_boilerplate_line_frac: float


# max_digit_frac for Chinese: digits are counted one by one, and Chinese finance text writes its
# amounts, rates and dates in digits between few characters, so its share runs high. Measured on
# the shipped finance corpus (1112 Chinese documents): median 0.12, 75th percentile 0.32, maximum
# 0.36 (compound-interest lines such as 本金20000元，年利率3%，...约为20600.00元。); the templated
# reports (300): median 0.14, maximum 0.32; a filing's sentence with amounts to the fen
# (报告期内，公司实现营业收入1,234,567,890.12元，同比增长12.34%；...) 0.37. The former limit of 0.3
# dropped 470 of the shipped documents. Over 0.5 a text is mostly digits: a table or a listing
# (with Han at least 0.3 of the characters, min_script_share, little else fits beside them).
# Latin-script text spells its words out (shipped finance English: at most 0.08): "en" keeps 0.3.
DEFAULT_THRESHOLDS = {
    "zh": Thresholds(min_length=20, max_length=1_000_000, min_script_share=0.3,
                     max_dup_line_frac=0.3, max_dup_para_frac=0.3, max_top_2gram_frac=0.2,
                     max_dup_ngram_frac=0.3, dup_n=10, max_symbol_frac=0.1, max_digit_frac=0.5,
                     max_boilerplate_line_frac=0.5),
    "en": Thresholds(min_length=10, max_length=200_000, min_script_share=0.5,
                     max_dup_line_frac=0.3, max_dup_para_frac=0.3, max_top_2gram_frac=0.2,
                     max_dup_ngram_frac=0.15, dup_n=5, max_symbol_frac=0.1, max_digit_frac=0.3,
                     max_boilerplate_line_frac=0.5),
}


_FRACTIONS = ("min_script_share", "max_dup_line_frac", "max_dup_para_frac", "max_top_2gram_frac",
              "max_dup_ngram_frac", "max_symbol_frac", "max_digit_frac", "max_boilerplate_line_frac")
_COUNTS = ("min_length", "max_length", "dup_n")


def thresholds_from_config(overrides) -> dict[str, Thresholds]:
  """DEFAULT_THRESHOLDS with the fields that `clean.thresholds` names, per language, e.g.
  {"zh": {"min_length": 50}, "en": {"max_symbol_frac": 0.05}}; a new language starts from "en"'s."""
  limits = dict(DEFAULT_THRESHOLDS)
  fields = {f.name for f in dataclasses.fields(Thresholds)}
  for language, values in dict(overrides or {}).items():
    where = f"clean.thresholds.{language}"
    if not hasattr(values, "items"):
      raise ConfigError(f"{where} must be a dict of thresholds (e.g. {{'min_length': 50}}), not {values!r}")
    for name, value in values.items():
      if name not in fields:
        raise ConfigError(f"{where}.{name}: no such threshold (known: {', '.join(sorted(fields))})")
      if name in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "dup_n" else 0)):
        raise ConfigError(f"{where}.{name} must be an integer >= {1 if name == 'dup_n' else 0}, not {value!r}")
      if name in _FRACTIONS and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
        raise ConfigError(f"{where}.{name} must be a fraction in [0, 1], not {value!r}")
    t = dataclasses.replace(limits.get(language, DEFAULT_THRESHOLDS["en"]), **dict(values.items()))
    if t.min_length > t.max_length:
      raise ConfigError(f"{where}: min_length {t.min_length} is above max_length {t.max_length}")
    limits[language] = t
  return limits


def _dup_frac(items: list[str]) -> float:
  """Share of characters in items that repeat an earlier item."""
  seen, dup, total = set(), 0, 0
  for item in items:
    total += len(item)
    if item in seen:
      dup += len(item)
    seen.add(item)
  return dup / total if total else 0.0


def _units(text: str) -> tuple[np.ndarray, np.ndarray]:
  """The units (Chinese characters one by one, other words whole, lower-cased) as ids (a Han
  character: its code point; a word: 0x110000 + the unit index where it first appears) and lengths."""
  lower = text.lower()
  flags = charclass.flags_of(lower)
  han = (flags & charclass.HAN) > 0
  word = (flags & charclass.UNIT) > 0
  before = np.concatenate(([False], word[:-1]))
  word_start = word & ~before
  starts = np.flatnonzero(han | word_start)
  ids = charclass.codepoints(lower)[starts].astype(np.int64)
  lengths = np.ones(len(starts), dtype=np.int64)
  words = _WORDS.findall(lower)
  if words:
    is_word = word_start[starts]
    first: dict[str, int] = {}
    ids[is_word] = np.fromiter(map(first.setdefault, words, range(0x110000, 0x110000 + len(words))),
                               dtype=np.int64, count=len(words))
    lengths[is_word] = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
  return ids, lengths


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The indices in stable sorted order of `keys`, and for each of them whether its key equals the
  one before it there (so an equal key appears earlier in `keys`)."""
  order = np.argsort(keys, kind="stable")
  sorted_keys = keys[order]
  repeat = np.empty(len(keys), dtype=bool)
  repeat[0] = False
  np.equal(sorted_keys[1:], sorted_keys[:-1], out=repeat[1:])
  return order, repeat


def _top_ngram_frac(ids: np.ndarray, lengths: np.ndarray, n: int = 2) -> float:
  """Characters covered by the most frequent unit 2-gram (the first to appear among equals), when
  it occurs more than once: a 2-gram seen once is no repetition, though in a short document it can
  cover a fifth of the text (a company's name in a one-sentence news item)."""
  if len(ids) < n:
    return 0.0
  keys = ids[:-1] * (int(ids.max()) + 1) + ids[1:]  # ids are below 2^31: no overflow
  order, repeat = _groups(keys)
  starts = np.flatnonzero(~repeat)
  counts = np.diff(np.append(starts, len(keys)))
  top = int(counts.max())
  if top < 2:
    return 0.0
  best = int(order[starts[counts == top]].min())
  total = int(lengths.sum())
  return top * int(lengths[best] + lengths[best + 1]) / total if total else 0.0


def _dup_ngram_frac(ids: np.ndarray, lengths: np.ndarray, n: int) -> float:
  """Characters inside any n-gram seen earlier in the text (Gopher's duplicate n-gram fraction)."""
  m = len(ids) - n + 1
  total = int(lengths.sum())
  if m <= 0 or not total:
    return 0.0
  windows = np.lib.stride_tricks.sliding_window_view(ids, n)
  keys = windows @ _WINDOW_WEIGHTS[:n] if n <= len(_WINDOW_WEIGHTS) else windows.sum(axis=1)
  order, repeat = _groups(keys)
  at = np.flatnonzero(repeat)
  if not len(at):
    return 0.0
  seen, same_key_before = order[at], order[at - 1]
  if not (windows[seen] == windows[same_key_before]).all():  # two different windows share a key
    return _dup_ngram_frac_slow(ids.tolist(), lengths.tolist(), n, total)
  cover = np.bincount(seen, minlength=len(ids) + n) - np.bincount(seen + n, minlength=len(ids) + n)
  return int(lengths[np.cumsum(cover)[:len(ids)] > 0].sum()) / total


# Equal windows get equal keys (a sum that wraps mod 2^64); different windows that collide are
# caught by comparing the windows themselves.
_WINDOW_WEIGHTS = np.random.default_rng(0).integers(1, 2**62, size=64, dtype=np.int64) | 1


def _dup_ngram_frac_slow(ids: list[int], lengths: list[int], n: int, total: int) -> float:
  seen, covered = set(), [False] * len(ids)
  for i in range(len(ids) - n + 1):
    gram = tuple(ids[i:i + n])
    if gram in seen:
      covered[i:i + n] = [True] * n
    seen.add(gram)
  return sum(length for length, c in zip(lengths, covered) if c) / total


def quality_reason(text: str, language: str, limits: dict[str, Thresholds]) -> str | None:
  """Why the text fails its language's thresholds, or None when it passes."""
  t = limits.get(language)
  if t is None:
    return f"language {language}"
  flags = charclass.flags_of(text)
  han = charclass.count(flags, charclass.HAN)
  if language == "zh":
    length = han
  else:
    word = (flags & charclass.WORD) > 0
    length = int(np.count_nonzero(word[1:] & ~word[:-1])) + bool(len(word) and word[0])
  if length < t.min_length:
    return "too short"
  if length > t.max_length:
    return "too long"
  n = len(flags) - charclass.count(flags, charclass.SPACE)
  if n == 0:
    return "too short"
  share = (han if language == "zh" else charclass.count(flags, charclass.LATIN)) / n
  if share < t.min_script_share:
    return "low script share"
  lines = [line for line in text.split("\n") if line.strip()]
  if len(lines) > 1 and _dup_frac(lines) > t.max_dup_line_frac:
    return "repeated lines"
  paras = [p for p in text.split("\n\n") if p.strip()]
  if len(paras) > 1 and _dup_frac(paras) > t.max_dup_para_frac:
    return "repeated paragraphs"
  ids, lengths = _units(text)
  if _top_ngram_frac(ids, lengths, 2) > t.max_top_2gram_frac:
    return "repeated n-grams"
  if _dup_ngram_frac(ids, lengths, t.dup_n) > t.max_dup_ngram_frac:
    return "repeated n-grams"
  if int(np.count_nonzero((flags & (charclass.SYMBOL | charclass.SPACE)) == charclass.SYMBOL)) / n > t.max_symbol_frac:
    return "symbols"
  if charclass.count(flags, charclass.DIGIT) / n > t.max_digit_frac:
    return "digits"
  if _maybe_boilerplate(text) and sum(bool(BOILERPLATE.search(line)) for line in lines) / len(lines) > t.max_boilerplate_line_frac:
    return "boilerplate"
  return None


class QualityFilter(Notes, BaseFilter):
  """Drops documents that fail their language's thresholds (reason in the report)."""

  name = "quality"

  def __init__(self, thresholds: dict[str, Thresholds] | None = None):
    super().__init__()
    self.thresholds = dict(thresholds or DEFAULT_THRESHOLDS)

  def filter(self, doc) -> bool:
    reason = quality_reason(doc.text, doc.metadata.get("language", "other"), self.thresholds)
    if reason:
      self.drop(doc, reason)
      return False
    return True
