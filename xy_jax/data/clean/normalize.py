"""Text normalisation: NFKC (full-width letters and digits to half width), Chinese punctuation kept
full width next to Chinese characters, whitespace and control characters cleaned; as an option
(clean.t2s), traditional Chinese to simplified through OpenCC."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean.notes import Notes
from xy_jax.errors import ConfigError

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
# NFKC turns the full-width comma, colon etc. of Chinese text into ASCII ones; next to a Chinese
# character they are put back, so a Chinese sentence keeps one style of punctuation.
_TO_FULL = str.maketrans({",": "，", "!": "！", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）"})
_ASCII_PUNCT = "[,!?:;()]"
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACE_CHARS = " \t\u00a0\u3000\u2000-\u200a\u202f\u205f"
_BLANK_LINES = re.compile("\n{3,}")
_FULL_PUNCT = "，！？：；（）。、“”《》"
# Each pattern starts with the character it removes or changes, so sre scans for that character
# instead of testing a look-behind at every position; the look-behinds come after it and see the
# same characters as before, so the substitutions are the same.
_SPACE_RUNS = re.compile(f"[{_SPACE_CHARS}]{{2,}}|[{_SPACE_CHARS[1:]}]")  # a lone " " stays as it is
_CJK_GAP = re.compile(f" (?<=[{CJK}] )(?=[{CJK}])")
_SPACE_PUNCT_AFTER_CJK = re.compile(f" (?<=[{CJK}] )({_ASCII_PUNCT})")
_PUNCT_AFTER_CJK = re.compile(f"({_ASCII_PUNCT})(?<=[{CJK}]{_ASCII_PUNCT})")
_PUNCT_BEFORE_CJK = re.compile(f"({_ASCII_PUNCT}) ?(?=[{CJK}])")
_PUNCT_GAP = re.compile(f" (?<=[{_FULL_PUNCT}] )(?=[{CJK}])| (?<=[{CJK}] )(?=[{_FULL_PUNCT}])")
_FULL_OF = {c: c.translate(_TO_FULL) for c in ",!?:;()"}


def _full(m: re.Match) -> str:
  return _FULL_OF[m.group(1)]


def _half_width(text: str) -> str:
  """What NFKC does to the full-width ASCII forms (U+FF01-FF5E) and the ideographic space, on the
  code points at once, so a text with nothing else to change passes NFKC's quick check and skips
  the full normalisation (str.translate looks each character up in a dict: 3x slower)."""
  cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
  wide, ideographic_space = (cps >= 0xFF01) & (cps <= 0xFF5E), cps == 0x3000
  if not (wide.any() or ideographic_space.any()):
    return text
  cps = cps.copy()
  cps[wide] -= 0xFEE0
  cps[ideographic_space] = 0x20
  return cps.tobytes().decode("utf-32-le", "surrogatepass")


def normalize_text(text: str) -> str:
  """The text as the later steps and the dedup see it (idempotent)."""
  text = text.replace("\r\n", "\n").replace("\r", "\n")
  text = _half_width(text)
  if not unicodedata.is_normalized("NFKC", text):
    text = unicodedata.normalize("NFKC", text)
  text = _ZERO_WIDTH.sub("", text)
  text = _CONTROL.sub("", text)
  text = _SPACE_RUNS.sub(" ", text)
  text = _CJK_GAP.sub("", text)  # a space between two Chinese characters is a layout artefact
  # (?<=[CJK]) ?([,!?:;()]) in two passes: with the space, then without (what the first changed
  # is full width and is no CJK character, so the second sees what it saw in one pass)
  text = _SPACE_PUNCT_AFTER_CJK.sub(_full, text)
  text = _PUNCT_AFTER_CJK.sub(_full, text)
  text = _PUNCT_BEFORE_CJK.sub(_full, text)
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


def traditional_to_simplified():
  """OpenCC's t2s converter (its dictionaries ship inside the `opencc` wheel: nothing is downloaded)."""
  try:
    import opencc
  except ImportError as e:
    raise ConfigError("clean.t2s needs OpenCC: pip install opencc (or the `clean` extra)") from e
  return opencc.OpenCC("t2s")


class Normalize(Notes, PipelineStep):
  """Normalises every document (traditional Chinese to simplified first, with `t2s`); drops
  undecodable and (after normalisation) empty ones."""

  type = "✂️ - CLEAN"
  name = "normalize"

  def __init__(self, t2s: bool = False):
    super().__init__()
    self.t2s = t2s

  def run(self, data, rank: int = 0, world_size: int = 1):
    convert = traditional_to_simplified().convert if self.t2s else None  # made here: it does not pickle
    for doc in data:
      if not decodable(doc.text):
        self.drop(doc, "undecodable text (lone surrogate)")
        continue
      if convert is not None:
        doc.text = convert(doc.text)
      doc.text = normalize_text(doc.text)
      if not doc.text:
        self.drop(doc, "empty after normalisation")
        continue
      yield doc
