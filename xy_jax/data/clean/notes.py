"""Reasons a step drops a document and counters it keeps, read back by the Measured wrapper."""

from __future__ import annotations

import collections

DROP_REASON = "drop_reason"


class Notes:
  """Mixin: `drop(doc, reason)` names why the next document will not come out; `count(name)`."""

  def drop(self, doc, reason: str) -> None:
    doc.metadata[DROP_REASON] = reason
    self.stat_update(f"dropped_{reason}")

  def count(self, name: str, n: int = 1) -> None:
    if not hasattr(self, "counters"):
      self.counters = collections.Counter()
    self.counters[name] += n
    self.stat_update(name, value=n)
