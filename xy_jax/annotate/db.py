"""The annotation database: one SQLite file in WAL mode (readers never block the one writer), a
busy timeout so concurrent writers wait instead of failing, and the schema.

Every vote is one row keyed by (item, rater): voting again replaces the row, so a repeated vote is
counted once and a changed vote replaces the earlier one.
"""

from __future__ import annotations

import os
import sqlite3

BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS raters (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  token_hash TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS items (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('gsb', 'preference')),
  category TEXT NOT NULL,
  prompt TEXT NOT NULL,
  answer_a TEXT NOT NULL,
  answer_b TEXT NOT NULL,
  model_a TEXT NOT NULL,
  model_b TEXT NOT NULL,
  score_a REAL,
  score_b REAL
);
CREATE TABLE IF NOT EXISTS assignments (
  item TEXT NOT NULL REFERENCES items (id),
  rater INTEGER NOT NULL REFERENCES raters (id),
  opaque TEXT NOT NULL UNIQUE,
  a_left INTEGER NOT NULL,
  PRIMARY KEY (item, rater)
);
-- a rater's next item and progress read its assignments alone (without this, every vote cycle
-- scanned all raters' assignments: docs/performance.md, annotation server under load)
CREATE INDEX IF NOT EXISTS assignments_by_rater ON assignments (rater);
CREATE TABLE IF NOT EXISTS votes (
  item TEXT NOT NULL,
  rater INTEGER NOT NULL,
  vote TEXT NOT NULL,
  a_left INTEGER,
  comment TEXT,
  voted_at REAL NOT NULL,
  PRIMARY KEY (item, rater),
  FOREIGN KEY (item, rater) REFERENCES assignments (item, rater)
);
CREATE TABLE IF NOT EXISTS sessions (
  id_hash TEXT PRIMARY KEY,
  rater INTEGER NOT NULL REFERENCES raters (id),
  csrf TEXT NOT NULL,
  expires REAL NOT NULL
);
"""


def connect(path: str, create: bool = False) -> sqlite3.Connection:
  """A connection in autocommit mode (transactions are explicit); the file must exist unless
  `create`, so a mistyped --db is named instead of silently starting an empty database."""
  if not create and not os.path.isfile(path):
    raise FileNotFoundError(f"--db={path}: no such annotation database (run `annotate init --db {path}`)")
  conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                         check_same_thread=False)
  conn.row_factory = sqlite3.Row
  conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
  conn.execute("PRAGMA foreign_keys = ON")
  if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
    raise OSError(f"--db={path}: SQLite could not switch to WAL mode (a network file system?)")
  if not create and conn.execute("SELECT name FROM sqlite_master WHERE name = 'votes'").fetchone() is None:
    raise ValueError(f"--db={path}: not an annotation database (run `annotate init --db {path}`)")
  return conn


def init(path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  conn = connect(path, create=True)
  try:
    conn.executescript(SCHEMA)
  finally:
    conn.close()


class transaction:
  """`with transaction(conn):` BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock is
  taken up front, so two writers never deadlock upgrading a read lock."""

  def __init__(self, conn: sqlite3.Connection):
    self.conn = conn

  def __enter__(self):
    self.conn.execute("BEGIN IMMEDIATE")
    return self.conn

  def __exit__(self, kind, value, tb):
    self.conn.execute("ROLLBACK" if kind else "COMMIT")
    return False
