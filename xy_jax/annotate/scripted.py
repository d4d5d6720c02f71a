"""A scripted rater: logs in and votes on every item it is given through the pages a browser uses,
reading the prompt and the two answers off the item page and asking `choose` for the vote."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from xy_jax.annotate.load import login, request

_FIELD = {name: re.compile(pattern, re.S) for name, pattern in (
    ("prompt", r'<div class="prompt" id="prompt">(.*?)</div>'),
    ("left", r'<div class="answer" id="left"><h3>[^<]*</h3>(.*?)</div>'),
    ("right", r'<div class="answer" id="right"><h3>[^<]*</h3>(.*?)</div>'),
    ("csrf", r'name="csrf" value="([^"]+)"'))}


def vote_all(port: int, token: str, choose: Callable[[str, str, str], str], limit: int = 100_000) -> int:
  """Votes until the server says every item is done; `choose(prompt, left, right)` returns the
  button's value (G / S / B, or left / right / tie). Returns the votes recorded."""
  cookie, n = login(port, token), 0
  while n < limit:
    status, headers, _ = request(port, "GET", "/", cookie=cookie)
    if status == 200:
      return n
    where = headers["Location"]
    status, _, page = request(port, "GET", where, cookie=cookie)
    fields = {k: p.search(page) for k, p in _FIELD.items()}
    if status != 200 or not all(fields.values()):
      raise RuntimeError(f"{where}: answered {status} without the item's fields")
    prompt, left, right = (html.unescape(fields[k].group(1)) for k in ("prompt", "left", "right"))
    form = {"csrf": fields["csrf"].group(1), "item": where.removeprefix("/item/"),
            "vote": choose(prompt, left, right)}
    status, _, _ = request(port, "POST", "/vote", form, cookie=cookie)
    if status != 303:
      raise RuntimeError(f"vote on {where}: answered {status}")
    n += 1
  raise RuntimeError(f"still items to vote on after {limit} votes")
