"""The raters' server over HTTP on an ephemeral loopback port: access control, CSRF, escaping,
sides, resuming, and concurrent votes."""

import threading
import time

import pytest

from tests.annotate.helpers import item_rows, make_db
from tests.annotate.server_client import Served
from xy_jax.annotate import db
from xy_jax.annotate.raters import digest


@pytest.fixture
def served(tmp_path):
  rows = item_rows(3)
  rows[0]["answer_a"] = "<script>alert('x')</script> & 市盈率"
  path, tokens = make_db(tmp_path, names=("r1", "r2"), rows=rows, raters_per_item=2,
                         model_a="secret-model-a", model_b="secret-model-b")
  s = Served(path)
  yield s, path, tokens
  s.close()


def _votes(path):
  conn = db.connect(path)
  try:
    return conn.execute("SELECT v.item, r.name, v.vote, v.a_left FROM votes v JOIN raters r ON r.id = v.rater "
                        "ORDER BY v.item, r.name").fetchall()
  finally:
    conn.close()


def test_no_token_no_access(served):
  s, path, tokens = served
  status, headers, _ = s.request("GET", "/")
  assert status == 303 and headers["Location"] == "/login"
  assert s.request("GET", "/item/anything")[0] == 303
  assert s.request("GET", "/", cookie="forged-session-id")[1]["Location"] == "/login"
  assert s.request("POST", "/vote", {"item": "x", "vote": "G", "csrf": "x"})[0] == 401
  status, _, page = s.request("POST", "/login", {"token": "not-a-token"})
  assert status == 401 and 'name="token"' in page
  assert s.request("GET", "/login")[0] == 200
  assert _votes(path) == []


def test_login_sets_a_strict_httponly_cookie_and_stores_only_hashes(served):
  s, path, tokens = served
  status, headers, _ = s.request("POST", "/login", {"token": tokens["r1"]})
  cookie = headers["Set-Cookie"]
  assert status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
  sid = cookie.split("=", 1)[1].split(";")[0]
  conn = db.connect(path)
  try:
    dump = "\n".join(conn.iterdump())
  finally:
    conn.close()
  assert sid not in dump and tokens["r1"] not in dump and digest(sid) in dump


def test_another_raters_item_is_refused(served):
  s, path, tokens = served
  c1, c2 = s.login(tokens["r1"]), s.login(tokens["r2"])
  opaque1, _, _ = s.next_item(c1)
  _, csrf2, _ = s.next_item(c2)
  assert s.request("GET", f"/item/{opaque1}", cookie=c2)[0] == 404
  assert s.vote(c2, opaque1, csrf2, "G")[0] == 404
  assert _votes(path) == []


def test_votes_need_the_sessions_csrf_token_and_the_same_origin(served):
  s, path, tokens = served
  c1, c2 = s.login(tokens["r1"]), s.login(tokens["r2"])
  opaque, _, _ = s.next_item(c1)
  _, csrf2, _ = s.next_item(c2)
  assert s.vote(c1, opaque, "", "G")[0] == 403
  assert s.vote(c1, opaque, csrf2, "G")[0] == 403  # another session's token
  _, csrf1, _ = s.next_item(c1)
  assert s.request("POST", "/vote", {"csrf": csrf1, "item": opaque, "vote": "G"}, cookie=c1,
                   headers={"Origin": "http://evil.example"})[0] == 403
  assert s.request("POST", "/vote", {"csrf": csrf1, "item": opaque, "vote": "G"}, cookie=c1,
                   headers={"Origin": "null"})[0] == 403  # an opaque origin (sandboxed frame, file)
  assert s.vote(c1, opaque, csrf1, "X")[0] == 400
  assert _votes(path) == []
  assert s.vote(c1, opaque, csrf1, "G")[0] == 303  # the same post, from the page's own session


def test_a_double_vote_counts_once_and_sides_map_back_to_a(served):
  s, path, tokens = served
  c1 = s.login(tokens["r1"])
  opaque, csrf, _ = s.next_item(c1)
  assert s.vote(c1, opaque, csrf, "G")[0] == 303
  assert s.vote(c1, opaque, csrf, "G")[0] == 303
  rows = _votes(path)
  assert len(rows) == 1
  # G means "the left answer is better": A's vote is G when A was on the left, else B.
  assert rows[0]["vote"] == ("G" if rows[0]["a_left"] else "B")
  s.vote(c1, opaque, csrf, "S")
  assert [r["vote"] for r in _votes(path)] == ["S"]


def test_model_output_is_escaped_and_pages_are_locked_down(served):
  s, path, tokens = served
  c1 = s.login(tokens["r1"])
  _, _, page = s.next_item(c1)  # the first item holds the script
  assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; 市盈率" in page
  assert "<script>alert" not in page
  assert '<html lang="zh-CN">' in page and "secret-model" not in page
  status, headers, _ = s.request("GET", "/", cookie=c1)
  status, headers, _ = s.request("GET", headers["Location"], cookie=c1)
  csp = headers["Content-Security-Policy"]
  assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
  assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_progress_and_resume_where_the_rater_left(served):
  s, path, tokens = served
  c1 = s.login(tokens["r1"])
  first, csrf, page = s.next_item(c1)
  assert '<span id="progress">0/3</span>' in page
  s.vote(c1, first, csrf, "B")
  second, _, page = s.next_item(s.login(tokens["r1"]))  # a new session resumes too
  assert second != first and '<span id="progress">1/3</span>' in page
  assert "your vote" in s.request("GET", f"/item/{first}", cookie=c1)[2]


def test_fifty_threads_voting_at_once_lose_no_vote(tmp_path):
  raters = [f"r{i}" for i in range(10)]
  path, tokens = make_db(tmp_path, names=raters, rows=item_rows(25), raters_per_item=2)
  s = Served(path)
  try:
    work = []  # (cookie, opaque, csrf): every assignment, 50 in all
    conn = db.connect(path)
    try:
      for name in raters:
        cookie = s.login(tokens[name])
        _, csrf, _ = s.next_item(cookie)
        for row in conn.execute("SELECT a.opaque FROM assignments a JOIN raters r ON r.id = a.rater "
                                "WHERE r.name = ?", (name,)):
          work.append((cookie, row["opaque"], csrf))
    finally:
      conn.close()
    assert len(work) == 50
    start, statuses = threading.Barrier(len(work)), []

    def vote(cookie, opaque, csrf):
      start.wait(30)
      statuses.append(s.vote(cookie, opaque, csrf, "G")[0])

    threads = [threading.Thread(target=vote, args=w, daemon=True) for w in work]
    began = time.monotonic()
    for t in threads:
      t.start()
    for t in threads:
      t.join(60)
    assert time.monotonic() - began < 60
    assert statuses == [303] * 50
    assert len(_votes(path)) == 50
  finally:
    s.close()


def test_a_client_that_stalls_mid_body_loses_its_thread_not_the_server(served, monkeypatch):
  """A body shorter than its Content-Length used to hold a server thread for ever."""
  import socket
  from xy_jax.annotate.server import Handler
  s, _, _ = served
  assert Handler.timeout and Handler.timeout <= 60  # the served default; shortened below to keep the test quick
  monkeypatch.setattr(Handler, "timeout", 1)
  stalled = socket.create_connection(("127.0.0.1", s.port), timeout=10)
  stalled.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\ntoken=")
  start = time.monotonic()
  assert stalled.recv(1024) == b""  # the server hangs up after its timeout
  assert time.monotonic() - start < 8
  stalled.close()
  status, _, _ = s.request("GET", "/login")
  assert status == 200


def test_a_raters_assignments_are_read_through_an_index(served):
  _, path, _ = served
  conn = db.connect(path)
  try:
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM assignments a WHERE a.rater = ?", (1,)).fetchall())
  finally:
    conn.close()
  assert "assignments_by_rater" in plan, plan
