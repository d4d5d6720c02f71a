"""tools/evaluate.py against lm-evaluation-harness itself: same items, same four log-likelihoods.

lm-eval runs its own `ceval-valid` and `cmmlu` templates (included from the installed package),
pointed at local CSVs with `dataset_path: csv`, on our HF export of a random tiny Llama, through
its HF backend with `add_bos_token=True`.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.hf_helpers import make_hf_model
from tests.train.train_helpers import ROOT, env
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.eval.lm_eval_tasks import run_lm_eval, write_task_files
from xy_jax.eval.tasks import load_split

MAX_LEN = 400  # some 5-shot prompts below it, some above (left-truncated by lm-eval)

# Questions with surrounding spaces (stripped by doc_to_text), an embedded newline, mixed scripts
# and options with inner spaces; no numeric-looking or NA-like cell (the csv loader would retype it).
QUESTIONS = [
    ("  下列哪一项是“市盈率”的含义？ ", "股价与每股收益之比", "股价与净资产之比", "净利润率", "负债比率", "A"),
    ("“复利”指的是？\n（单选）", "单利", "利滚利的计息方式", "贴现", "年金", "B"),
    ("Which term means: the share price divided by earnings per share?", "book value",
     "dividend  yield", "P/E ratio", "market cap", "C"),
    ("央行降低存款准备金率，通常意味着", "收紧银根", "汇率上升", "通货紧缩", "释放流动性", "D"),
    ("债券久期衡量的是", "价格对利率的敏感度", "信用风险", "流动性", "票面利率", "A"),
    ("对冲的目的是", "放大收益", "降低风险", "增加杠杆", "提高费用", "B"),
    ("分散投资可以", "集中风险", "提高手续费", "降低非系统性风险", "保证收益", "C"),
    ("The river flows", "west", "east toward the sea", "uphill", "nowhere", "B"),
    ("通货膨胀会使货币购买力", "上升", "不变", "翻倍", "下降", "D"),
    ("股息率等于", "每股分红除以股价", "股价除以分红", "市值除以利润", "利润除以资产", "A"),
]


def _write(root, task, subject, rows):
  """dev = the first 5 rows; the scored split (C-Eval val, CMMLU test) the rest."""
  scored, header = {"ceval": ("val", ("id", "question", "A", "B", "C", "D", "answer", "explanation")),
                    "cmmlu": ("test", ("", "Question", "A", "B", "C", "D", "Answer"))}[task]
  for split, part in (("dev", rows[:5]), (scored, rows[5:])):
    name = f"{subject}_{split}.csv" if task == "ceval" else f"{subject}.csv"
    os.makedirs(os.path.join(root, split), exist_ok=True)
    with open(os.path.join(root, split, name), "w", encoding="utf-8", newline="") as f:
      w = csv.writer(f)
      w.writerow(header)
      w.writerows((f"q{i}", *r, "no explanation")[:len(header)] for i, r in enumerate(part))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
  """A random tiny HF Llama, imported and exported by xy_jax (our tokenizer files)."""
  base = tmp_path_factory.mktemp("parity")
  make_hf_model(str(base / "hf"), seed=7, max_position_embeddings=MAX_LEN)
  for tool, args in (("import_hf.py", ["--hf", str(base / "hf"), "--out", str(base / "ckpt")]),
                     ("export_hf.py", ["--checkpoint", str(base / "ckpt"), "--out", str(base / "export")])):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", tool), *args], capture_output=True,
                          text=True, env=env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
  return str(base / "export")


def _ours(model, task, data_dir, out):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "evaluate.py"), "--hf", model,
                         "--task", task, "--data_dir", data_dir, "--out", out, "--dtype", "float32"],
                        capture_output=True, text=True, env=env(), timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().splitlines()[-1].startswith("accuracy: ")
  with open(os.path.join(out, "items.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def test_loglikelihoods_and_answers_match_lm_eval(tmp_path, export, monkeypatch):
  monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
  ceval, cmmlu, tasks = str(tmp_path / "ceval"), str(tmp_path / "cmmlu"), str(tmp_path / "tasks")
  for subject, rows in {"accountant": QUESTIONS, "college_economics": QUESTIONS[2:] + QUESTIONS[:2]}.items():
    _write(ceval, "ceval", subject, rows)
  _write(cmmlu, "cmmlu", "economics", QUESTIONS[1:] + QUESTIONS[:1])
  ours, names = {}, []
  for task, data_dir in (("ceval", ceval), ("cmmlu", cmmlu)):
    names += write_task_files(load_split(task, data_dir), data_dir, tasks)
    for r in _ours(export, task, data_dir, str(tmp_path / f"out_{task}")):
      ours[f"xy_{task}_{r['subject']}", r["index"]] = r
  assert sorted(names) == ["xy_ceval_accountant", "xy_ceval_college_economics", "xy_cmmlu_economics"]
  with open(os.path.join(tasks, "xy_ceval_accountant.yaml"), encoding="utf-8") as f:
    assert "以下是中国关于注册会计师的单项选择题" in f.read()  # the subject's Chinese name

  result = run_lm_eval(export, tasks, names, shots=5)
  compared = 0
  for task in names:
    for sample in result["samples"][task]:
      mine = ours[task, sample["doc_id"]]
      theirs = [float(r[0][0]) for r in sample["resps"]]
      np.testing.assert_allclose([mine["loglik"][c] for c in "ABCD"], theirs, atol=1e-4, rtol=0)
      assert mine["pred"] == "ABCD"[int(np.argmax(theirs))]
      assert mine["gold"] == "ABCD"[sample["target"]]
      compared += 1
  assert compared == len(ours) == 3 * (len(QUESTIONS) - 5)
  # Some few-shot prompts run past the model's positions: lm-eval's left truncation is matched too.
  tok = load_tokenizer(os.path.join(export, "tokenizer.model"))
  lengths = [len(tok.encode(s["arguments"][0][0], bos=True)) for t in names for s in result["samples"][t]]
  assert min(lengths) < MAX_LEN < max(lengths), lengths
