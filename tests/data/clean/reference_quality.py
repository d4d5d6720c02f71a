"""The implementation before the speed-ups (kept to check the fast one gives the same results). Quality filters with per-language thresholds; Chinese is measured in characters, Latin-script
text in words (Gopher's word-length rules would drop all Chinese: a jieba word averages 1.7 chars)."""

from __future__ import annotations

import collections
import dataclasses
import re
import unicodedata

from datatrove.pipeline.filters.base_filter import BaseFilter

from xy_jax.data.clean.language import script_counts
from xy_jax.data.clean.normalize import CJK
from xy_jax.data.clean.notes import Notes

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_UNIT = re.compile(f"[{CJK}]|[^\\W{CJK}]+")
BOILERPLATE = re.compile(
    r"(版权所有|all rights reserved|copyright ©|©|免责声明|点击(这里|此处|查看|关注)|扫一扫|"
    r"关注(我们|公众号)|上一篇|下一篇|返回(顶部|首页)|cookie|javascript|privacy policy|"
    r"terms of (use|service)|log ?in|sign ?up|subscribe|登录|注册|分享到)", re.IGNORECASE)


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


def _dup_frac(items: list[str]) -> float:
  """Share of characters in items that repeat an earlier item."""
  seen, dup, total = set(), 0, 0
  for item in items:
    total += len(item)
    if item in seen:
      dup += len(item)
    seen.add(item)
  return dup / total if total else 0.0


def _units(text: str) -> list[str]:
  """Chinese characters one by one, other words whole (lower-cased)."""
  return _UNIT.findall(text.lower())


def _top_ngram_frac(units: list[str], n: int) -> float:
  grams = collections.Counter(tuple(units[i:i + n]) for i in range(len(units) - n + 1))
  if not grams:
    return 0.0
  gram, count = grams.most_common(1)[0]
  if count < 2:  # a 2-gram seen once is no repetition
    return 0.0
  total = sum(len(u) for u in units)
  return count * sum(len(u) for u in gram) / total if total else 0.0


def _dup_ngram_frac(units: list[str], n: int) -> float:
  """Characters inside any n-gram seen earlier in the text (Gopher's duplicate n-gram fraction)."""
  seen, covered = set(), [False] * len(units)
  for i in range(len(units) - n + 1):
    gram = tuple(units[i:i + n])
    if gram in seen:
      covered[i:i + n] = [True] * n
    seen.add(gram)
  total = sum(len(u) for u in units)
  return sum(len(u) for u, c in zip(units, covered) if c) / total if total else 0.0


def quality_reason(text: str, language: str, limits: dict[str, Thresholds]) -> str | None:
  """Why the text fails its language's thresholds, or None when it passes."""
  t = limits.get(language)
  if t is None:
    return f"language {language}"
  han, latin = script_counts(text)
  length = han if language == "zh" else len(_WORD.findall(text))
  if length < t.min_length:
    return "too short"
  if length > t.max_length:
    return "too long"
  chars = [c for c in text if not c.isspace()]
  n = len(chars)
  share = (han if language == "zh" else latin) / n
  if share < t.min_script_share:
    return "low script share"
  lines = [line for line in text.split("\n") if line.strip()]
  if len(lines) > 1 and _dup_frac(lines) > t.max_dup_line_frac:
    return "repeated lines"
  paras = [p for p in text.split("\n\n") if p.strip()]
  if len(paras) > 1 and _dup_frac(paras) > t.max_dup_para_frac:
    return "repeated paragraphs"
  units = _units(text)
  if _top_ngram_frac(units, 2) > t.max_top_2gram_frac:
    return "repeated n-grams"
  if _dup_ngram_frac(units, t.dup_n) > t.max_dup_ngram_frac:
    return "repeated n-grams"
  symbols = sum(1 for c in chars if unicodedata.category(c)[0] in "SC" or unicodedata.category(c) == "Co")
  if symbols / n > t.max_symbol_frac:
    return "symbols"
  if sum(c.isdigit() for c in chars) / n > t.max_digit_frac:
    return "digits"
  if sum(bool(BOILERPLATE.search(line)) for line in lines) / len(lines) > t.max_boilerplate_line_frac:
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
