"""The raters' web server: the standard library's ThreadingHTTPServer.

No web framework: the server has five routes and a dozen raters, and the standard library keeps
it installable anywhere the package is (a rater's laptop, an air-gapped box) with nothing more to
audit; each request opens its own SQLite connection, and WAL plus the busy timeout serialise the
writes.

A rater exchanges its token (POST /login) for an HttpOnly, SameSite=Strict session cookie; the
server stores only the session id's hash, with the session's CSRF token that every vote must
carry. Pages name items by opaque per-(item, rater) ids and show the answers as left and right, on
the sides the server drew for that rater; model names never reach the browser.
"""

from __future__ import annotations

import hmac
import http.cookies
import sqlite3
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from xy_jax.annotate import db, pages, raters
from xy_jax.annotate.votes import record_vote

COOKIE = "xy_annotate_session"
MAX_BODY = 64 * 1024
SCREEN_VOTES = {"gsb": ("G", "S", "B"), "preference": ("left", "right", "tie")}


def a_vote(kind: str, screen: str, a_left: int) -> str:
  """The vote about A from a vote about the left answer."""
  if kind == "gsb":
    return screen if a_left or screen == "S" else {"G": "B", "B": "G"}[screen]
  if screen == "tie":
    return "tie"
  return "A" if (screen == "left") == bool(a_left) else "B"


def screen_vote(kind: str, vote: str, a_left: int) -> str:
  return next(s for s in SCREEN_VOTES[kind] if a_vote(kind, s, a_left) == vote)


class Server(ThreadingHTTPServer):
  daemon_threads = True
  request_queue_size = 128  # a burst of raters connecting at once is queued, not refused

  def __init__(self, address: tuple[str, int], db_path: str, quiet: bool = False):
    db.connect(db_path).close()  # a wrong --db fails here, not on the first request
    self.db_path, self.quiet = db_path, quiet
    super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
  server: Server
  server_version = "xy-annotate"
  sys_version = ""
  # A client that stops sending (a short body under a long Content-Length, an idle keep-alive)
  # gives up its thread after this many seconds instead of holding it for ever.
  timeout = 30

  def log_message(self, fmt, *args):
    if not self.server.quiet:
      sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

  # --- responses

  def _send(self, status: int, body: bytes = b"", content_type: str = "text/html; charset=utf-8",
            headers: dict | None = None) -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self.send_header("Content-Security-Policy", pages.CSP)
    self.send_header("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: under no-referrer browsers post forms with `Origin: null`,
    # which the same-origin check must refuse.
    self.send_header("Referrer-Policy", "same-origin")
    self.send_header("Cache-Control", "no-store")
    for k, v in (headers or {}).items():
      self.send_header(k, v)
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(body)

  def _redirect(self, where: str, headers: dict | None = None) -> None:
    self._send(HTTPStatus.SEE_OTHER, b"", headers={"Location": where, **(headers or {})})

  def _error(self, status: int, text: str) -> None:
    self._send(status, pages.page(text, f"<h1>{int(status)}</h1><p>{text}</p>"))

  # --- requests

  def _session(self, conn: sqlite3.Connection):
    cookie = http.cookies.SimpleCookie()
    try:
      cookie.load(self.headers.get("Cookie", ""))
    except http.cookies.CookieError:
      return None
    morsel = cookie.get(COOKIE)
    return raters.session(conn, morsel.value) if morsel and morsel.value else None

  def _form(self) -> dict[str, str] | None:
    try:
      length = int(self.headers.get("Content-Length", "0"))
    except ValueError:
      return None
    if length < 0 or length > MAX_BODY:
      return None
    body = self.rfile.read(length).decode("utf-8", "replace")
    return {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}

  def _same_origin(self) -> bool:
    """A cross-site form post carries another Origin; browsers that send none are covered by the
    SameSite cookie and the CSRF token."""
    origin = self.headers.get("Origin")
    return origin is None or urllib.parse.urlsplit(origin).netloc == self.headers.get("Host")

  def do_GET(self):
    self._route("GET")

  def do_POST(self):
    self._route("POST")

  def _route(self, method: str) -> None:
    path = urllib.parse.urlsplit(self.path).path
    if method == "GET" and path == "/static/annotate.js":
      return self._send(200, pages.SCRIPT.encode(), "text/javascript; charset=utf-8")
    if method == "GET" and path == "/static/annotate.css":
      return self._send(200, pages.STYLE.encode(), "text/css; charset=utf-8")
    if method == "POST" and not self._same_origin():
      return self._error(HTTPStatus.FORBIDDEN, "cross-origin request refused")
    conn = db.connect(self.server.db_path)
    try:
      if path == "/login":
        return self._login(conn) if method == "POST" else self._send(200, pages.login())
      who = self._session(conn)
      if who is None:
        if method == "GET":
          return self._redirect("/login")
        return self._error(HTTPStatus.UNAUTHORIZED, "log in first")
      if method == "GET" and path == "/":
        return self._next(conn, who)
      if method == "GET" and path.startswith("/item/"):
        return self._item(conn, who, path.removeprefix("/item/"))
      if method == "POST" and path == "/vote":
        return self._vote(conn, who)
      if method == "POST" and path == "/logout":
        conn.execute("DELETE FROM sessions WHERE rater = ? AND csrf = ?", (who["rater"], who["csrf"]))
        return self._redirect("/login", {"Set-Cookie": f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"})
      return self._error(HTTPStatus.NOT_FOUND, "not found")
    finally:
      conn.close()

  def _login(self, conn: sqlite3.Connection) -> None:
    form = self._form() or {}
    rater = raters.rater_by_token(conn, form.get("token", "").strip())
    if rater is None:
      return self._send(HTTPStatus.UNAUTHORIZED, pages.login("令牌无效 / unknown token"))
    sid, _ = raters.new_session(conn, rater["id"])
    self._redirect("/", {"Set-Cookie": f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/; "
                                      f"Max-Age={raters.SESSION_SECONDS}"})

  def _progress(self, conn: sqlite3.Connection, rater: int) -> tuple[int, int]:
    row = conn.execute("SELECT COUNT(*) AS total, COUNT(v.vote) AS done FROM assignments a LEFT JOIN "
                       "votes v ON v.item = a.item AND v.rater = a.rater WHERE a.rater = ?", (rater,)).fetchone()
    return row["done"], row["total"]

  def _next(self, conn: sqlite3.Connection, who) -> None:
    """The rater's first item without a vote, in import order: a rater resumes where it left."""
    row = conn.execute("SELECT a.opaque FROM assignments a JOIN items i ON i.id = a.item LEFT JOIN votes v "
                       "ON v.item = a.item AND v.rater = a.rater WHERE a.rater = ? AND v.vote IS NULL "
                       "ORDER BY i.seq LIMIT 1", (who["rater"],)).fetchone()
    if row is None:
      return self._send(200, pages.finished(who["name"], *self._progress(conn, who["rater"])))
    self._redirect(f"/item/{row['opaque']}")

  def _assignment(self, conn: sqlite3.Connection, who, opaque: str):
    """The rater's own assignment; another rater's looks exactly like one that does not exist."""
    return conn.execute("SELECT a.item, a.a_left, i.kind, i.prompt, i.answer_a, i.answer_b, v.vote "
                        "FROM assignments a JOIN items i ON i.id = a.item LEFT JOIN votes v "
                        "ON v.item = a.item AND v.rater = a.rater WHERE a.opaque = ? AND a.rater = ?",
                        (opaque, who["rater"])).fetchone()

  def _item(self, conn: sqlite3.Connection, who, opaque: str) -> None:
    a = self._assignment(conn, who, opaque)
    if a is None:
      return self._error(HTTPStatus.NOT_FOUND, "no such item")
    left, right = (a["answer_a"], a["answer_b"]) if a["a_left"] else (a["answer_b"], a["answer_a"])
    current = screen_vote(a["kind"], a["vote"], a["a_left"]) if a["vote"] else None
    done, total = self._progress(conn, who["rater"])
    self._send(200, pages.item(rater=who["name"], kind=a["kind"], opaque=opaque, csrf=who["csrf"],
                               prompt=a["prompt"], left=left, right=right, done=done, total=total,
                               current=current))

  def _vote(self, conn: sqlite3.Connection, who) -> None:
    form = self._form()
    if form is None:
      return self._error(HTTPStatus.BAD_REQUEST, "bad form")
    if not hmac.compare_digest(form.get("csrf", "").encode(), who["csrf"].encode()):
      return self._error(HTTPStatus.FORBIDDEN, "stale or missing form token; reload the page")
    a = self._assignment(conn, who, form.get("item", ""))
    if a is None:
      return self._error(HTTPStatus.NOT_FOUND, "no such item")
    screen = form.get("vote", "")
    if screen not in SCREEN_VOTES[a["kind"]]:
      return self._error(HTTPStatus.BAD_REQUEST, "unknown vote")
    comment = form.get("comment", "").strip()[:2000] if a["kind"] == "preference" else None
    record_vote(conn, a["item"], who["rater"], a_vote(a["kind"], screen, a["a_left"]), a["a_left"], comment)
    self._redirect("/")


def make_server(db_path: str, host: str = "127.0.0.1", port: int = 0, quiet: bool = False) -> Server:
  return Server((host, port), db_path, quiet)
