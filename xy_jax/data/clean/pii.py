"""PII masking by pattern: e-mail addresses, phone numbers (Chinese mobile and landline,
international), Chinese ID-card numbers (checksum-verified) and bank-card numbers (Luhn-verified)."""

from __future__ import annotations

import itertools
import re

from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean.notes import Notes

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# 13-19 digits: three groups of four, then the rest in one run (4-4-4-4, 4-4-4-7, 19 in a row) or
# as four and a last group of one to three (4-4-4-4-3, as 19-digit UnionPay cards are printed).
BANK_CARD = re.compile(r"(?<![\d-])(?:\d{4}[ -]?){3}(?:\d{4}(?P<last>[ -]\d{1,3})|\d{1,7})(?![\d-])")
PHONE = re.compile(
    r"(?<![\d+])(?:"
    r"(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}"          # Chinese mobile
    r"|0\d{2,3}-\d{7,8}"                                      # Chinese landline with area code
    r"|\+\d{1,3}[ -]?\(?\d{1,4}\)?(?:[ -]?\d{2,4}){2,3}"      # international
    r"|\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}"              # North American
    r")(?!\d)")
# Every number pattern above needs at least 6 digits (the shortest international phone number):
# a text with fewer has none of them, and its scans are skipped.
_DIGIT = re.compile(r"\d")
_MIN_DIGITS = 6
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_card_valid(number: str) -> bool:
  """GB 11643 checksum of an 18-character Chinese resident ID, plus a plausible birth date."""
  body, check = number[:17], number[17].upper()
  month, day = int(number[10:12]), int(number[12:14])
  if not (1 <= month <= 12 and 1 <= day <= 31 and number[6:8] in ("18", "19", "20")):
    return False
  return "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS)) % 11] == check


def luhn_valid(digits: str) -> bool:
  total = 0
  for i, d in enumerate(reversed(digits)):
    v = int(d) * (2 if i % 2 else 1)
    total += v - 9 if v > 9 else v
  return total % 10 == 0


def _card_valid(s: str) -> bool:
  return 13 <= len(d := re.sub(r"\D", "", s)) <= 19 and luhn_valid(d)


def _mask_card(m: re.Match, counts: dict[str, int]) -> str:
  """The match when it passes Luhn; else, when it ends in a short group after 4-4-4-4, the sixteen
  digits before it when they pass (the short group stays): a card followed by another number."""
  text, last = m.group(0), m.group("last")
  candidates = [(text, "")]
  if last:
    candidates.append((text[:-len(last)], last))
  for card, rest in candidates:
    if _card_valid(card):
      counts["bank_card"] += 1
      return "[BANK_CARD]" + rest
  return text


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
  """The text with PII replaced by [EMAIL] [ID_CARD] [BANK_CARD] [PHONE], and counts per kind."""
  counts = {"email": 0, "id_card": 0, "bank_card": 0, "phone": 0}

  def sub(kind, token, valid=None):
    def repl(m):
      if valid is not None and not valid(m.group(0)):
        return m.group(0)
      counts[kind] += 1
      return token
    return repl

  if "@" in text:
    text = EMAIL.sub(sub("email", "[EMAIL]"), text)
  if len(list(itertools.islice(_DIGIT.finditer(text), _MIN_DIGITS))) < _MIN_DIGITS:
    return text, counts
  text = ID_CARD.sub(sub("id_card", "[ID_CARD]", id_card_valid), text)
  text = BANK_CARD.sub(lambda m: _mask_card(m, counts), text)
  text = PHONE.sub(sub("phone", "[PHONE]"), text)
  return text, counts


class MaskPII(Notes, PipelineStep):
  """Masks PII in every document; the counts per kind go to the report."""

  type = "✂️ - CLEAN"
  name = "pii"

  def run(self, data, rank: int = 0, world_size: int = 1):
    for doc in data:
      doc.text, counts = mask_pii(doc.text)
      for kind, n in counts.items():
        if n:
          self.count(f"masked {kind}", n)
      yield doc
