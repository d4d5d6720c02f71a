"""Raters' tokens and browser sessions.

Tokens and session ids are 256-bit random strings, so a single sha256 is enough to store them (a
slow hash like scrypt guards low-entropy passwords against guessing; these cannot be guessed). The
database holds only the hashes: a copy of it lets no one log in.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time

from xy_jax.annotate.db import transaction

SESSION_SECONDS = 7 * 24 * 3600


def digest(secret: str) -> str:
  return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def add_raters(conn: sqlite3.Connection, names: list[str]) -> dict[str, str]:
  """name -> token, shown once; a name that exists already stops the whole call."""
  tokens = {}
  with transaction(conn):
    for name in names:
      if not name.strip() or name != name.strip():
        raise ValueError(f"rater name {name!r}: empty or with surrounding spaces")
      if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
        raise ValueError(f"rater {name!r} exists already (its token cannot be shown again)")
      tokens[name] = secrets.token_urlsafe(32)
      conn.execute("INSERT INTO raters (name, token_hash) VALUES (?, ?)", (name, digest(tokens[name])))
  return tokens


def rater_by_token(conn: sqlite3.Connection, token: str) -> sqlite3.Row | None:
  return conn.execute("SELECT id, name FROM raters WHERE token_hash = ?", (digest(token),)).fetchone()


def rater_id(conn: sqlite3.Connection, name: str) -> int | None:
  row = conn.execute("SELECT id FROM raters WHERE name = ?", (name,)).fetchone()
  return row["id"] if row else None


def new_session(conn: sqlite3.Connection, rater: int) -> tuple[str, str]:
  """(session id for the cookie, CSRF token for the forms); only the id's hash is stored."""
  sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
  with transaction(conn):
    conn.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
    conn.execute("INSERT INTO sessions (id_hash, rater, csrf, expires) VALUES (?, ?, ?, ?)",
                 (digest(sid), rater, csrf, time.time() + SESSION_SECONDS))
  return sid, csrf


def session(conn: sqlite3.Connection, sid: str) -> sqlite3.Row | None:
  """(rater, name, csrf) of a live session, or None."""
  return conn.execute(
      "SELECT s.rater, r.name, s.csrf FROM sessions s JOIN raters r ON r.id = s.rater "
      "WHERE s.id_hash = ? AND s.expires > ?", (digest(sid), time.time())).fetchone()
