"""The report's arithmetic on a database: majorities, rates, interval, agreement, position bias,
agreement with the reward model; votes replace each other; imports are checked line by line."""

import pytest

from tests.annotate.helpers import item_rows, make_db, write_jsonl
from xy_jax.annotate import db, report, votes
from xy_jax.annotate.items import import_items
from xy_jax.annotate.raters import rater_id


def _vote(path, pattern, kind_votes):
  """kind_votes: item id -> votes of r1, r2, r3 (None: no vote)."""
  conn = db.connect(path)
  try:
    for item, vs in kind_votes.items():
      for name, v in zip(("r1", "r2", "r3"), vs):
        if v is not None:
          votes.record_vote(conn, item, rater_id(conn, name), v, a_left=pattern.get((item, name)))
    return report.build(conn)
  finally:
    conn.close()


def test_majority_rates_per_category_and_overall(tmp_path):
  rows = item_rows(4, "finance") + item_rows(2, "general")
  path, _ = make_db(tmp_path, rows=rows)
  r = _vote(path, {}, {"finance-0": "GGB", "finance-1": "GSB", "finance-2": "BBS", "finance-3": "SSG",
                       "general-0": ["G", "G", None], "general-1": ["G", None, None]})
  fin = r["categories"]["finance"]
  # finance: G (2 of 3), no majority -> same, B, S
  assert (fin["n"], fin["win"], fin["tie"], fin["lose"]) == (4, 0.25, 0.5, 0.25)
  assert fin["win_and_tie"] == 0.75
  low, high = fin["win_and_tie_ci95"]
  assert 0.0 <= low <= 0.75 <= high <= 1.0
  assert set(r["categories"]) == {"finance", "general"}
  assert r["categories"]["general"]["win"] == 1.0
  assert r["overall"]["n"] == 6 and r["votes"] == 3 * 4 + 2 + 1


def test_no_majority_is_a_tie_and_half_is_not_a_majority(tmp_path):
  path, _ = make_db(tmp_path, names=("r1", "r2"), rows=item_rows(1), raters_per_item=2)
  conn = db.connect(path)
  try:
    votes.record_vote(conn, "finance-0", rater_id(conn, "r1"), "G")
    votes.record_vote(conn, "finance-0", rater_id(conn, "r2"), "B")
    assert report.build(conn)["overall"]["tie"] == 1.0
  finally:
    conn.close()


def test_a_repeated_vote_counts_once_and_a_changed_vote_replaces_it(tmp_path):
  path, _ = make_db(tmp_path, rows=item_rows(1))
  conn = db.connect(path)
  try:
    r1 = rater_id(conn, "r1")
    for v in ("G", "G", "G", "B"):
      votes.record_vote(conn, "finance-0", r1, v)
    rows = conn.execute("SELECT vote FROM votes").fetchall()
    assert [row["vote"] for row in rows] == ["B"]
    with pytest.raises(ValueError, match="expected one of G/S/B"):
      votes.record_vote(conn, "finance-0", r1, "A")
  finally:
    conn.close()


def test_agreement_keys_and_perfect_agreement(tmp_path):
  path, _ = make_db(tmp_path, rows=item_rows(3))
  r = _vote(path, {}, {"finance-0": "GGG", "finance-1": "SSS", "finance-2": "BBB"})
  assert r["agreement"] == {"fleiss_kappa": pytest.approx(1.0), "krippendorff_alpha": pytest.approx(1.0),
                            "cohen_kappa_mean": pytest.approx(1.0)}


def test_position_bias_counts_decided_votes_with_a_side(tmp_path):
  path, _ = make_db(tmp_path, rows=item_rows(4))
  # A on the left for r1 and r2, on the right for r3. r1, r2 pick A (left); r3 picks A (right).
  sides = {(f"finance-{i}", n): int(n != "r3") for i in range(4) for n in ("r1", "r2", "r3")}
  r = _vote(path, sides, {f"finance-{i}": "GGG" for i in range(4)})
  bias = r["position_bias"]
  assert bias["n"] == 12 and bias["left_share"] == pytest.approx(8 / 12)
  assert bias["p_value"] == pytest.approx(0.3876953125)  # scipy.stats.binomtest(8, 12).pvalue
  conn = db.connect(path)  # imported votes carry no side: nothing to measure
  try:
    conn.execute("UPDATE votes SET a_left = NULL")
    assert report.build(conn)["position_bias"] == {"n": 0, "left_share": None, "p_value": None}
  finally:
    conn.close()


def test_rm_agreement_only_when_scores_were_imported(tmp_path):
  rows = [dict(r, score_a=s_a, score_b=s_b) for r, (s_a, s_b) in
          zip(item_rows(3), [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])]
  path, _ = make_db(tmp_path, rows=rows, kind="preference")
  r = _vote(path, {}, {"finance-0": ["A", "A", "B"], "finance-1": ["A", "A", "A"], "finance-2": ["B", "B", "tie"]})
  # decided: finance-0 (A, RM A: agree), finance-1 (A, RM B: disagree), finance-2 (B, RM tie: not agreeing)
  assert r["rm_agreement"] == {"n": 3, "agreement": pytest.approx(1 / 3)}
  (tmp_path / "unscored").mkdir()
  path2, _ = make_db(tmp_path / "unscored", rows=item_rows(1))
  conn = db.connect(path2)
  try:
    assert "rm_agreement" not in report.build(conn)
  finally:
    conn.close()


def test_import_errors_name_the_line_and_reimport_is_a_no_op(tmp_path):
  path, _ = make_db(tmp_path)
  conn = db.connect(path)
  try:
    good = write_jsonl(tmp_path / "good.jsonl", item_rows(2))
    assert import_items(conn, good, "gsb") == (2, 0)
    assert import_items(conn, good, "gsb") == (0, 2)
    bad = write_jsonl(tmp_path / "bad.jsonl", item_rows(1, "x") + [{"prompt": "p", "answer_a": "a"}])
    with pytest.raises(ValueError, match=r"bad.jsonl:2: \"answer_b\" must be a non-empty string"):
      import_items(conn, bad, "gsb")
    assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 2  # all or nothing
    changed = write_jsonl(tmp_path / "changed.jsonl", [dict(item_rows(1)[0], answer_a="other")])
    with pytest.raises(ValueError, match="changed.jsonl:1: item id 'finance-0' exists with other content"):
      import_items(conn, changed, "gsb")
    # Each item went to the three raters, each with its own side.
    assert conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == 6
  finally:
    conn.close()


def test_import_votes_checks_rater_assignment_and_vote(tmp_path):
  path, _ = make_db(tmp_path, names=("r1", "r2", "r3", "r4"), rows=item_rows(1), raters_per_item=3)
  conn = db.connect(path)
  try:
    outsider = conn.execute("SELECT name FROM raters WHERE id NOT IN (SELECT rater FROM assignments)").fetchone()[0]
    insider = conn.execute("SELECT name FROM raters WHERE id IN (SELECT rater FROM assignments)").fetchone()[0]
    f = write_jsonl(tmp_path / "v.jsonl", [{"item": "finance-0", "rater": outsider, "vote": "G"}])
    with pytest.raises(ValueError, match=f"v.jsonl:1: item 'finance-0' is not assigned to '{outsider}'"):
      votes.import_votes(conn, f)
    f = write_jsonl(tmp_path / "v2.jsonl", [{"item": "finance-0", "rater": insider, "vote": "tie"}])
    with pytest.raises(ValueError, match="v2.jsonl:1: vote 'tie' for gsb item"):
      votes.import_votes(conn, f)
    f = write_jsonl(tmp_path / "v3.jsonl", [{"item": "finance-0", "rater": "nobody", "vote": "G"}])
    with pytest.raises(ValueError, match="v3.jsonl:1: no rater named 'nobody'"):
      votes.import_votes(conn, f)
  finally:
    conn.close()


def test_a_file_not_in_utf8_is_named_with_its_line(tmp_path):
  from xy_jax.annotate.jsonl import records
  path = tmp_path / "gbk.jsonl"
  path.write_bytes(b'{"prompt": "a"}\n' + '{"prompt": "市盈率"}\n'.encode("gbk"))
  with pytest.raises(ValueError, match=r"gbk.jsonl:2: not UTF-8 \(byte 13 of the line\)"):
    list(records(str(path)))
