"""Scripted raters for load tests: each logs in with its own token, then does what a browser does
for every vote (GET / for the next item, GET the item page, POST /vote) until its time or its vote
budget runs out. Loopback only; standard library only."""

from __future__ import annotations

import dataclasses
import http.client
import math
import random
import re
import time
import urllib.parse

from xy_jax.annotate.server import COOKIE, SCREEN_VOTES


@dataclasses.dataclass
class RaterRun:
  accepted: int = 0  # votes answered 303 (recorded)
  vote_ms: list = dataclasses.field(default_factory=list)  # POST /vote alone
  cycle_ms: list = dataclasses.field(default_factory=list)  # next item + page + vote
  errors: dict = dataclasses.field(default_factory=dict)  # what went wrong -> how often
  finished: bool = False  # no item left


def request(port, method, path, form=None, cookie=None):
  conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
  try:
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    body = None
    if form is not None:
      body = urllib.parse.urlencode(form)
      headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.headers, resp.read().decode("utf-8")
  finally:
    conn.close()


def login(port, token) -> str:
  status, headers, _ = request(port, "POST", "/login", {"token": token})
  cookie = re.search(f"{COOKIE}=([^;]+)", headers.get("Set-Cookie", ""))
  if status != 303 or cookie is None:
    raise RuntimeError(f"login answered {status}")
  return cookie.group(1)


def rate(port: int, token: str, kind: str, deadline: float, max_votes: int, seed: int) -> RaterRun:
  """One rater until `deadline` (time.monotonic) or `max_votes` recorded votes."""
  run, rng = RaterRun(), random.Random(seed)

  def error(what):
    run.errors[what] = run.errors.get(what, 0) + 1

  try:
    cookie = login(port, token)
  except (OSError, RuntimeError) as e:
    error(f"login: {e}")
    return run
  while time.monotonic() < deadline and run.accepted < max_votes:
    start = time.perf_counter()
    try:
      status, headers, _ = request(port, "GET", "/", cookie=cookie)
      if status == 200:  # the "all done" page
        run.finished = True
        break
      status, _, page = request(port, "GET", headers["Location"], cookie=cookie)
      csrf = re.search(r'name="csrf" value="([^"]+)"', page)
      if status != 200 or csrf is None:
        error(f"item page {status}")
        continue
      form = {"csrf": csrf.group(1), "item": headers["Location"].removeprefix("/item/"),
              "vote": rng.choice(SCREEN_VOTES[kind])}
      sent = time.perf_counter()
      status, _, _ = request(port, "POST", "/vote", form, cookie=cookie)
    except OSError as e:
      error(type(e).__name__)
      continue
    done = time.perf_counter()
    if status == 303:
      run.accepted += 1
      run.vote_ms.append((done - sent) * 1000)
      run.cycle_ms.append((done - start) * 1000)
    else:
      error(f"vote {status}")
  return run


def percentile(values: list[float], q: float) -> float:
  """Nearest rank; nan for no values."""
  if not values:
    return float("nan")
  ordered = sorted(values)
  return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]
