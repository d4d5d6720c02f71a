"""tools/sample_candidates.py: K answers per prompt from one model (or A/B pairs from two), prompts
deduplicated, near-duplicate answers dropped, the output imported by tools/annotate.py as it is."""

import collections
import json
import os
import subprocess
import sys

import pytest

from tests.annotate.helpers import run_tool as run_annotate
from tests.hf_helpers import make_hf_model
from tests.train.train_helpers import ROOT, env
from xy_jax.annotate import candidates as cand

TOOL = os.path.join(ROOT, "tools", "sample_candidates.py")
PROMPTS = [{"prompt": "什么是市盈率？", "category": "finance"},
           {"prompt": "  什么是市盈率？\n", "category": "finance/other"},  # the first, up to whitespace
           {"prompt": "你好，今天心情不太好。", "category": "general/chat"},
           {"prompt": "什么是 市盈率？", "category": "finance"},  # one space more: another prompt
           {"prompt": "什么是 \t\n市盈率？", "category": "x"}]  # the one above, up to whitespace


def sample(*args):
  return subprocess.run([sys.executable, TOOL, "--max_new_tokens", "8", *args], capture_output=True,
                        text=True, env=env(), cwd=ROOT, timeout=300)


def read(path):
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp("models")
  make_hf_model(str(root / "a"), seed=4)
  make_hf_model(str(root / "b"), seed=5)
  prompts = root / "prompts.jsonl"
  prompts.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PROMPTS), encoding="utf-8")
  return str(root / "a"), str(root / "b"), str(prompts)


def imported(tmp_path, path, *args):
  db = str(tmp_path / "ann.sqlite")
  for cmd in (("init", "--db", db), ("add-raters", "--db", db, "r1", "r2", "r3"),
              ("import", "--db", db, path, "--raters_per_item", "2", *args)):
    proc = run_annotate(*cmd)
    assert proc.returncode == 0, proc.stderr
  return proc.stdout


def test_prompts_are_deduplicated_after_whitespace_normalisation():
  P = collections.namedtuple("P", "text category")
  kept, dropped = cand.unique_prompts([P(p["prompt"], p["category"]) for p in PROMPTS])
  assert [p.category for p in kept] == ["finance", "general/chat", "finance"]
  assert dropped == 2


def test_a_planted_near_duplicate_and_an_empty_answer_are_dropped():
  base = "市盈率是股票价格与每股收益的比率，用来衡量估值的高低，数值越高说明市场预期越高。"
  near = base[:-1] + "！"  # one character changed
  assert cand.jaccard(cand.trigrams(base), cand.trigrams(near)) >= 0.9
  other = "市盈率越低，股票可能越便宜，但也要看公司的成长性。"
  texts = [base, other, near, "  \n", other + " "]
  answers = [cand.Candidate("sft", s, t) for s, t in enumerate(texts)]
  kept, dropped = cand.distinct(answers)
  assert [c.seed for c in kept] == [0, 1]
  assert dropped == 3
  # Below the threshold it stays.
  kept, _ = cand.distinct(answers[:3], threshold=1.0)
  assert [c.seed for c in kept] == [0, 1, 2]


def test_pairs_one_model_all_two_subsets_and_ab_by_seed():
  a = [cand.Candidate("a", s, f"answer {s}") for s in (0, 1, 2)]
  assert [(x.seed, y.seed) for x, y in cand.pairs(a)] == [(0, 1), (0, 2), (1, 2)]
  b = [cand.Candidate("b", s, f"other {s}") for s in (0, 2)]  # seed 1 dropped as a near-duplicate
  assert [(x.seed, y.seed, y.model) for x, y in cand.pairs(a, b)] == [(0, 0, "b"), (2, 2, "b")]


def test_k_answers_per_prompt_with_distinct_seeds_imported_as_preferences(tmp_path, models):
  a, _, prompts = models
  out = str(tmp_path / "cands.jsonl")
  proc = sample("--model", a, "--name_a", "sft", "--prompts", prompts, "--k", "3", "--out", out)
  assert proc.returncode == 0, proc.stderr
  assert "3 prompts (2 repeated ones dropped)" in proc.stderr
  rows = read(out)
  by_prompt = collections.defaultdict(list)
  for r in rows:
    assert r["model_a"] == r["model_b"] == "sft"
    assert r["seed_a"] < r["seed_b"]
    by_prompt[(r["prompt"], r["category"])].append(r)
  assert set(by_prompt) == {(p["prompt"], p["category"]) for p in (PROMPTS[0], PROMPTS[2], PROMPTS[3])}
  for group in by_prompt.values():
    seeds = {s for r in group for s in (r["seed_a"], r["seed_b"])}
    assert seeds <= {0, 1, 2} and len(group) == len(seeds) * (len(seeds) - 1) // 2
    texts = {r["seed_a"]: r["answer_a"] for r in group} | {r["seed_b"]: r["answer_b"] for r in group}
    assert len(set(texts.values())) == len(texts)  # different seeds, different answers
  assert len(rows) >= 6
  assert f"{len(rows)} items added, 0 already there" in imported(tmp_path, out, "--kind", "preference")
  proc = sample("--model", a, "--prompts", prompts, "--k", "3", "--out", out)
  assert proc.returncode == 2 and "already exists" in proc.stderr.splitlines()[-1]


def test_ab_pairs_share_a_seed_and_import_as_gsb(tmp_path, models):
  a, b, prompts = models
  out = str(tmp_path / "ab.jsonl")
  proc = sample("--model_a", a, "--model_b", b, "--name_a", "PPO", "--name_b", "SFT", "--prompts", prompts,
                "--k", "2", "--out", out)
  assert proc.returncode == 0, proc.stderr
  rows = read(out)
  assert rows and all((r["model_a"], r["model_b"]) == ("PPO", "SFT") for r in rows)
  assert all(r["seed_a"] == r["seed_b"] for r in rows)
  assert {r["seed_a"] for r in rows} == {0, 1}
  assert any(r["answer_a"] != r["answer_b"] for r in rows)  # two different models
  assert f"{len(rows)} items added" in imported(tmp_path, out, "--kind", "gsb")


def test_one_model_or_two_not_both(tmp_path, models):
  a, b, prompts = models
  proc = sample("--model", a, "--model_a", a, "--model_b", b, "--prompts", prompts, "--out", str(tmp_path / "x"))
  assert proc.returncode == 2
  assert proc.stderr.splitlines()[-1] == ("error: pass either --model PATH, or both --model_a PATH and "
                                          "--model_b PATH")
