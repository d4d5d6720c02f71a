"""A real browser (Debian's chromium-headless-shell driven by playwright) against the raters'
server: log in with a token, vote G, S, B by keyboard, reload and resume at the next item; a second
rater's browser can neither see nor change the first's votes."""

import re

import pytest
from playwright import sync_api

from tests.annotate.browser import chromium_path
from tests.annotate.helpers import item_rows, make_db
from tests.annotate.server_client import Served
from xy_jax.annotate import db


@pytest.fixture(scope="session")
def browser():
  path = chromium_path()
  with sync_api.sync_playwright() as p:
    # --no-sandbox: the suite runs as root in CI containers, where chromium's sandbox cannot start.
    b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
    yield b
    b.close()


def _votes(path, rater):
  conn = db.connect(path)
  try:
    return {r["item"]: (r["vote"], r["a_left"]) for r in conn.execute(
        "SELECT v.item, v.vote, v.a_left FROM votes v JOIN raters r ON r.id = v.rater WHERE r.name = ?",
        (rater,))}
  finally:
    conn.close()


def _login(browser, base, token):
  context = browser.new_context()
  page = context.new_page()
  errors = []
  page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
  page.goto(base + "/")
  assert page.url == base + "/login"
  page.fill('input[name="token"]', token)
  with page.expect_navigation():
    page.keyboard.press("Enter")
  assert re.fullmatch(re.escape(base) + r"/item/[\w-]+", page.url), page.url
  return context, page, errors


def _press(page, key):
  with page.expect_navigation():
    page.keyboard.press(key)


def test_keyboard_votes_resume_and_a_second_rater_is_kept_out(tmp_path, browser):
  rows = item_rows(5)
  rows[0]["answer_b"] = "<img src=x onerror=alert(1)> 市盈率"
  path, tokens = make_db(tmp_path, names=("r1", "r2"), rows=rows, raters_per_item=2)
  s = Served(path)
  base = f"http://127.0.0.1:{s.port}"
  try:
    c1, p1, errors = _login(browser, base, tokens["r1"])
    cookie = next(c for c in c1.cookies() if c["name"] == "xy_annotate_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert p1.locator("#progress").inner_text() == "0/5"
    assert p1.locator(".legend").is_visible() and "1 / g" in p1.locator(".legend").inner_text()
    assert "<img src=x onerror=alert(1)>" in p1.locator(".answers").inner_text()  # shown as text
    assert p1.locator(".answers img").count() == 0
    first = p1.url
    visited = [first]
    for key, progress in (("g", "1/5"), ("2", "2/5"), ("b", "3/5")):
      _press(p1, key)
      assert p1.locator("#progress").inner_text() == progress
      visited.append(p1.url)
    assert len(set(visited)) == 4
    mine = _votes(path, "r1")
    assert sorted(mine) == ["finance-0", "finance-1", "finance-2"]
    # Screen votes were about the left answer; stored as A's vote through the side drawn for r1.
    for item, screen in zip(("finance-0", "finance-1", "finance-2"), "GSB"):
      vote, a_left = mine[item]
      assert vote == (screen if a_left or screen == "S" else {"G": "B", "B": "G"}[screen])
    p1.reload()
    assert p1.url == visited[-1] and p1.locator("#progress").inner_text() == "3/5"
    p1.goto(base + "/")  # resume: the next unvoted item
    assert p1.url == visited[-1]
    assert p1.evaluate("document.cookie") == ""  # HttpOnly: page scripts cannot read the session

    c2, p2, _ = _login(browser, base, tokens["r2"])
    assert p2.locator("#progress").inner_text() == "0/5"
    response = p2.goto(first)  # r1's item page
    assert response.status == 404 and "A 的回答" not in p2.content()
    p2.goto(base + "/")
    csrf2 = p2.locator('input[name="csrf"]').get_attribute("value")
    item1 = first.rsplit("/", 1)[1]
    posted = c2.request.post(base + "/vote", form={"csrf": csrf2, "item": item1, "vote": "B"},
                             max_redirects=0)
    assert posted.status == 404
    assert _votes(path, "r1") == mine and _votes(path, "r2") == {}
    assert not [e for e in errors if "Content Security Policy" in e], errors
    c1.close()
    c2.close()
  finally:
    s.close()
