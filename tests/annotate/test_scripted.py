"""The scripted rater votes through the raters' pages: it reads the prompt and both answers off the
item page (unescaped, on the sides the server drew) and its votes land as A's outcome."""

from tests.annotate.helpers import item_rows, make_db
from tests.annotate.server_client import Served
from xy_jax.annotate import db
from xy_jax.annotate.scripted import vote_all


def test_votes_follow_the_oracle_through_the_pages(tmp_path):
  rows = [{**r, "answer_a": f"<b>好</b> & {r['id']}", "answer_b": f"差 {r['id']}"} for r in item_rows(4)]
  path, tokens = make_db(tmp_path, names=("r1", "r2"), rows=rows, kind="preference")
  seen = []

  def choose(prompt, left, right):
    seen.append((prompt, left, right))
    return "left" if left.startswith("<b>好</b>") else "right"  # always A, whichever side it is on

  served = Served(path)
  try:
    assert [vote_all(served.port, t, choose) for t in tokens.values()] == [4, 4]
    assert vote_all(served.port, tokens["r1"], choose) == 0  # nothing left
  finally:
    served.close()
  assert {p for p, _, _ in seen} == {r["prompt"] for r in rows}
  assert all({l, r} == {x["answer_a"], x["answer_b"]} for (p, l, r), x in
             zip(seen, [next(x for x in rows if x["prompt"] == p) for p, _, _ in seen]))
  conn = db.connect(path)
  try:
    assert [v[0] for v in conn.execute("SELECT DISTINCT vote FROM votes")] == ["A"]
    assert conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 8
  finally:
    conn.close()
