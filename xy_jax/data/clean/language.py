"""Language routing by script share, with no downloaded model: Chinese (Han) vs Latin-script text.

"zh" when Han characters are at least `zh_share` of the letters (Han + Latin); "en" (any
Latin-script language) when Latin letters are; "other" when the text has neither.
"""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean import charclass


def script_counts(text: str) -> tuple[int, int]:
  """Han characters ([CJK]) and Latin letters ([A-Za-z\u00c0-\u024f]) in the text."""
  flags = charclass.flags_of(text)
  return charclass.count(flags, charclass.HAN), charclass.count(flags, charclass.LATIN)


def detect_language(text: str, zh_share: float = 0.3) -> str:
  han, latin = script_counts(text)
  if han + latin == 0:
    return "other"
  # A Chinese character carries about a word's worth of text, a Latin letter a fifth of one.
  return "zh" if han / (han + latin / 5) >= zh_share else "en"


class LanguageTag(PipelineStep):
  """Sets doc.metadata["language"] ("zh", "en" or "other") for the per-language thresholds."""

  type = "✂️ - CLEAN"
  name = "language"

  def __init__(self, zh_share: float = 0.3):
    super().__init__()
    self.zh_share = zh_share

  def run(self, data, rank: int = 0, world_size: int = 1):
    for doc in data:
      doc.metadata["language"] = detect_language(doc.text, self.zh_share)
      self.stat_update(f"lang_{doc.metadata['language']}")
      yield doc
