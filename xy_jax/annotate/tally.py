"""Each item's votes and majority, read once from the database for the report and the export."""

from __future__ import annotations

import collections
import dataclasses
import sqlite3

from xy_jax.annotate.items import outcome


@dataclasses.dataclass
class Tally:
  id: str
  kind: str
  category: str
  prompt: str
  answer_a: str
  answer_b: str
  model_a: str
  model_b: str
  score_a: float | None
  score_b: float | None
  votes: dict[str, str] = dataclasses.field(default_factory=dict)  # rater name -> vote (A's)
  sides: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (outcome, a_left) per web vote

  def counts(self) -> collections.Counter:
    return collections.Counter(outcome(self.kind, v) for v in self.votes.values())

  def majority(self) -> str | None:
    """A's outcome held by strictly more than half of the votes; no majority counts as a tie;
    None when nobody voted."""
    if not self.votes:
      return None
    best, n = self.counts().most_common(1)[0]
    return best if n * 2 > len(self.votes) else "tie"


def tallies(conn: sqlite3.Connection) -> list[Tally]:
  items = {}
  for row in conn.execute("SELECT id, kind, category, prompt, answer_a, answer_b, model_a, model_b, "
                          "score_a, score_b FROM items ORDER BY seq"):
    items[row["id"]] = Tally(**dict(row))
  for row in conn.execute("SELECT v.item, r.name, v.vote, v.a_left FROM votes v "
                          "JOIN raters r ON r.id = v.rater ORDER BY v.item, r.name"):
    t = items[row["item"]]
    t.votes[row["name"]] = row["vote"]
    if row["a_left"] is not None:
      t.sides.append((outcome(t.kind, row["vote"]), row["a_left"]))
  return list(items.values())
