"""Recording votes: from the web pages (with the side A was shown on) and from JSONL files."""

from __future__ import annotations

import sqlite3
import time

from xy_jax.annotate.db import transaction
from xy_jax.annotate.items import VOTES
from xy_jax.annotate.jsonl import records
from xy_jax.annotate.raters import rater_id


def record_vote(conn: sqlite3.Connection, item: str, rater: int, vote: str, a_left: int | None = None,
                comment: str | None = None) -> None:
  """One row per (item, rater): the same vote again changes nothing that is counted, another vote
  replaces the earlier one. `vote` is A's (G/S/B or A/B/tie); the item must be the rater's."""
  row = conn.execute("SELECT i.kind FROM assignments a JOIN items i ON i.id = a.item "
                     "WHERE a.item = ? AND a.rater = ?", (item, rater)).fetchone()
  if row is None:
    raise LookupError(f"item {item!r} is not assigned to this rater")
  if vote not in VOTES[row["kind"]]:
    raise ValueError(f"vote {vote!r} for {row['kind']} item {item!r}: expected one of "
                     f"{'/'.join(VOTES[row['kind']])}")
  conn.execute(
      "INSERT INTO votes (item, rater, vote, a_left, comment, voted_at) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (item, rater) DO UPDATE SET vote = excluded.vote, a_left = excluded.a_left, "
      "comment = excluded.comment, voted_at = excluded.voted_at",
      (item, rater, vote, a_left, comment or None, time.time()))


def import_votes(conn: sqlite3.Connection, path: str) -> int:
  """Rows {"item": id, "rater": name, "vote": ...} (all or none); returns the rows read."""
  n = 0
  with transaction(conn):
    for where, record in records(path):
      item, name, vote = record.get("item"), record.get("rater"), record.get("vote")
      if isinstance(item, int) and not isinstance(item, bool):
        item = str(item)
      if not all(isinstance(v, str) for v in (item, name, vote)):
        raise ValueError(f"{where}: expected {{\"item\": id, \"rater\": name, \"vote\": ...}}")
      rater = rater_id(conn, name)
      if rater is None:
        raise ValueError(f"{where}: no rater named {name!r}")
      try:
        comment = record.get("comment") if isinstance(record.get("comment"), str) else None
        record_vote(conn, item, rater, vote, comment=comment)
      except (LookupError, ValueError) as e:
        raise ValueError(f"{where}: {str(e).replace('this rater', repr(name))}") from None
      n += 1
  return n
