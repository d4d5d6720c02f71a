"""The implementation before the speed-ups (kept to check the fast one gives the same results). PII masking by pattern: e-mail addresses, phone numbers (Chinese mobile and landline,
international), Chinese ID-card numbers (checksum-verified) and bank-card numbers (Luhn-verified)."""

from __future__ import annotations

import re

from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean.notes import Notes

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
BANK_CARD = re.compile(r"(?<![\d-])(?:\d{4}[ -]?){3}(?:\d{4}(?P<last>[ -]\d{1,3})|\d{1,7})(?![\d-])")
PHONE = re.compile(
    r"(?<![\d+])(?:"
    r"(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}"          # Chinese mobile
    r"|0\d{2,3}-\d{7,8}"                                      # Chinese landline with area code
    r"|\+\d{1,3}[ -]?\(?\d{1,4}\)?(?:[ -]?\d{2,4}){2,3}"      # international
    r"|\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}"              # North American
    r")(?!\d)")
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

  text = EMAIL.sub(sub("email", "[EMAIL]"), text)
  text = ID_CARD.sub(sub("id_card", "[ID_CARD]", id_card_valid), text)

  def card(m):  # the whole, else 4-4-4-4 without the short group after it
    for number, rest in ((m.group(0), ""), (m.group(0)[:m.start("last") - m.start()], m.group("last"))):
      if rest is not None and 13 <= len(d := re.sub(r"\D", "", number)) <= 19 and luhn_valid(d):
        counts["bank_card"] += 1
        return "[BANK_CARD]" + rest
    return m.group(0)

  text = BANK_CARD.sub(card, text)
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
