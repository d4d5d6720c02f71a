"""The implementation before the speed-ups (kept to check the fast one gives the same results). Text normalisation: NFKC (full-width letters and digits to half width), Chinese punctuation kept
full width next to Chinese characters, whitespace and control characters cleaned."""

from __future__ import annotations

import re
import unicodedata

from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean.notes import Notes

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
# NFKC turns the full-width comma, colon etc. of Chinese text into ASCII ones; next to a Chinese
# character they are put back, so a Chinese sentence keeps one style of punctuation.
_TO_FULL = str.maketrans({",": "，", "!": "！", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）"})
_PUNCT_AFTER_CJK = re.compile(f"(?<=[{CJK}]) ?([,!?:;()])")
_PUNCT_BEFORE_CJK = re.compile(f"([,!?:;()]) ?(?=[{CJK}])")
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile("[ \t\u00a0\u3000\u2000-\u200a\u202f\u205f]+")
_CJK_GAP = re.compile(f"(?<=[{CJK}]) (?=[{CJK}])")
_BLANK_LINES = re.compile("\n{3,}")
_FULL_PUNCT = "，！？：；（）。、“”《》"
_PUNCT_GAP = re.compile(f"(?<=[{_FULL_PUNCT}]) (?=[{CJK}])|(?<=[{CJK}]) (?=[{_FULL_PUNCT}])")


def normalize_text(text: str) -> str:
  """The text as the later steps and the dedup see it (idempotent)."""
  text = text.replace("\r\n", "\n").replace("\r", "\n")
  text = unicodedata.normalize("NFKC", text)
  text = _ZERO_WIDTH.sub("", text)
  text = _CONTROL.sub("", text)
  text = _SPACES.sub(" ", text)
  text = _CJK_GAP.sub("", text)  # a space between two Chinese characters is a layout artefact
  text = _PUNCT_AFTER_CJK.sub(lambda m: m.group(1).translate(_TO_FULL), text)
  text = _PUNCT_BEFORE_CJK.sub(lambda m: m.group(1).translate(_TO_FULL), text)
  text = _PUNCT_GAP.sub("", text)
  text = "\n".join(line.strip() for line in text.split("\n"))
  return _BLANK_LINES.sub("\n\n", text).strip()


def decodable(text: str) -> bool:
  """False for text with lone surrogates (JSON "\\ud800"), which no UTF-8 writer can store."""
  try:
    text.encode("utf-8")
    return True
  except UnicodeEncodeError:
    return False


class Normalize(Notes, PipelineStep):
  """Normalises every document; drops undecodable and (after normalisation) empty ones."""

  type = "✂️ - CLEAN"
  name = "normalize"

  def run(self, data, rank: int = 0, world_size: int = 1):
    for doc in data:
      if not decodable(doc.text):
        self.drop(doc, "undecodable text (lone surrogate)")
        continue
      doc.text = normalize_text(doc.text)
      if not doc.text:
        self.drop(doc, "empty after normalisation")
        continue
      yield doc
