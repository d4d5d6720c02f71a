"""The answer letter in a chat model's text, by FinanceIQ's published rules (its `extract_choice`,
shared with CMMLU), made deterministic: where they fall back to a random letter, the first
standalone A-D is taken, and a text with none is unparseable (None, counted apart)."""

from __future__ import annotations

import re

# In order; the first that matches wins (group = the letter).
_SINGLE = [
    (r"答案(选项)?(是|为)：? ?([ABCD])", 3), (r"答案(是|为)选项 ?([ABCD])", 2),
    (r"故?选择?：? ?([ABCD])", 1), (r"([ABCD]) ?选?项(是|为)?正确", 1),
    (r"正确的?选项(是|为) ?([ABCD])", 2), (r"答案(应该)?(是|为)([ABCD])", 3),
    (r"选项 ?([ABCD]) ?(是|为)?正确", 1), (r"选择答案 ?([ABCD])", 1),
    (r"答案?：?([ABCD])", 1), (r"([ABCD])(选?项)?是?符合题意", 1),
    (r"答案选项：? ?([ABCD])", 1), (r"答案(选项)?为(.*?)([ABCD])", 3),
]
_RECURSIVE = [(r"([ABCD])(.*?)当选", 1), (r"([ABCD])(.*?)正确", 1)]
_WEAK = [(r"[^不]是：? ?([ABCD])", 1)]
_ONLY_LETTER = re.compile(r"^[^ABCD]*([ABCD])[^ABCD]*$")
_STANDALONE = re.compile(r"(?<![A-Za-z])([ABCD])(?![A-Za-z])")


def extract_choice(text: str) -> str | None:
  text = text.strip()
  if not text:
    return None
  if text[0] in "ABCD":
    return text[0]
  for pattern, group in _SINGLE:
    m = re.search(pattern, text, re.M)
    if m:
      return m.group(group)
  for pattern, group in _RECURSIVE:  # the last letter of nested matches ("A...B当选" -> B)
    m = re.search(pattern, text, re.M)
    if m:
      while m:
        letter = m.group(group)
        m = re.search(pattern, m.group(0)[1:], re.M)
      return letter
  for pattern, group in _WEAK:
    m = re.search(pattern, text, re.M)
    if m:
      return m.group(group)
  m = _ONLY_LETTER.match(text)
  if m:
    return m.group(1)
  m = _STANDALONE.search(text)
  return m.group(1) if m else None
