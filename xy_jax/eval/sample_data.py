"""Sample benchmark data in the published layouts of C-Eval, CMMLU, MMLU and FinanceIQ, written from
the project's own glossary and facts (no downloads): a few subjects, a few dozen 4-option items
each, for tests and the demo. `tools/make_data.py` writes it to data/eval/bench/.
"""

from __future__ import annotations

import csv
import json
import os
import random

from xy_jax.data.synthetic_text import GLOSSARY
from xy_jax.eval.subjects import CEVAL_SUBJECTS

LETTERS = "ABCD"

FACTS_ZH = (  # (question, answer, three wrong options)
    ("中国最长的河流是", "长江", ("黄河", "珠江", "淮河")),
    ("水在多少摄氏度时会结冰？", "零摄氏度", ("十摄氏度", "一百摄氏度", "五十摄氏度")),
    ("地球围绕太阳运行一周大约需要", "一年", ("一天", "一个月", "十年")),
    ("一年有几个月？", "十二个月", ("十个月", "六个月", "二十四个月")),
    ("坚持锻炼身体有助于", "保持健康", ("增加负债", "降低利率", "提高汇率")),
    ("读书可以", "开阔眼界，增长知识", ("降低收入", "减少睡眠", "提高房价")),
    ("学习一门新语言需要", "耐心和练习", ("一天时间", "大量负债", "高杠杆")),
    ("早睡早起的好处是", "身体更好", ("收益更高", "利率更低", "汇率更稳")),
)
FACTS_EN = (
    ("Water freezes at", "zero degrees Celsius", ("ten degrees Celsius", "fifty degrees Celsius",
                                                   "one hundred degrees Celsius")),
    ("The Earth takes about how long to orbit the Sun?", "a year", ("a day", "a month", "ten years")),
    ("Regular exercise helps people", "stay healthy", ("borrow more", "pay less tax", "earn interest")),
    ("Reading", "widens the mind and builds knowledge", ("lowers income", "raises prices",
                                                         "shortens sleep")),
    ("Learning a new language takes", "patience", ("one hour", "a loan", "leverage")),
    ("A good night's sleep improves", "concentration", ("inflation", "exchange rates", "margins")),
)


def _item(rng: random.Random, question: str, right: str, wrong) -> tuple[str, list[str], str]:
  options = [right, *rng.sample(list(wrong), 3)]
  rng.shuffle(options)
  return question, options, LETTERS[options.index(right)]


def _others(rng, i: int, field: int) -> list[str]:
  return [GLOSSARY[j][field] for j in rng.sample([j for j in range(len(GLOSSARY)) if j != i], 3)]


def definition_items(rng: random.Random, english: bool = False) -> list:
  """"What does TERM mean?" with four definitions."""
  t, d = (2, 3) if english else (0, 1)
  q = "Which of the following is the {}?" if english else "下列哪一项是“{}”的含义？"
  return [_item(rng, q.format(e[t]), e[d], _others(rng, i, d)) for i, e in enumerate(GLOSSARY)]


def term_items(rng: random.Random, english: bool = False) -> list:
  """"DEFINITION is called?" with four terms."""
  t, d = (2, 3) if english else (0, 1)
  q = "Which term means: {}?" if english else "“{}”指的是下列哪一项？"
  return [_item(rng, q.format(e[d]), e[t], _others(rng, i, t)) for i, e in enumerate(GLOSSARY)]


def compound_items(rng: random.Random, n: int) -> list:
  items = []
  for _ in range(n):
    p, r, y = rng.choice((1000, 5000, 10000, 20000)), rng.choice((2, 3, 4, 5)), rng.choice((2, 3))
    right = f"{p * (1 + r / 100) ** y:.2f}元"
    wrong = (f"{p * (1 + r / 100 * y):.2f}元", f"{p * (1 + r / 100) ** (y + 1):.2f}元", f"{p * r / 100:.2f}元")
    items.append(_item(rng, f"本金{p}元，年利率{r}%，按复利计算{y}年后本息合计约为多少元？", right, wrong))
  return items


def fact_items(rng: random.Random, english: bool = False) -> list:
  return [_item(rng, q, a, w) for q, a, w in (FACTS_EN if english else FACTS_ZH)]


def _subjects(seed: int) -> dict[str, dict[str, list]]:
  """task -> subject -> items (the first 5 of each subject become its dev split)."""
  rng = random.Random(seed)
  return {
      "ceval": {"college_economics": definition_items(rng), "accountant": term_items(rng)[:20] +
                compound_items(rng, 10), "middle_school_geography": fact_items(rng) + fact_items(rng)},
      "cmmlu": {"economics": term_items(rng), "professional_accounting": compound_items(rng, 25),
                "elementary_commonsense": fact_items(rng) + fact_items(rng)},
      "mmlu": {"high_school_macroeconomics": definition_items(rng, english=True),
               "professional_accounting": term_items(rng, english=True),
               "miscellaneous": fact_items(rng, english=True) + fact_items(rng, english=True)},
      "financeiq": {"银行从业资格": definition_items(rng), "证券从业资格": term_items(rng),
                    "理财规划师": compound_items(rng, 25)},
  }


def _write_csv(path: str, header, rows) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    if header:
      w.writerow(header)
    w.writerows(rows)


def write_benchmarks(root: str, seed: int = 0) -> dict[str, int]:
  """Write the four layouts under `root`; returns items written per task."""
  counts = {}
  for task, subjects in _subjects(seed).items():
    d = os.path.join(root, task)
    for subject, items in subjects.items():
      splits = {"dev": items[:5], ("val" if task == "ceval" else "test"): items[5:]}
      if task == "ceval":  # C-Eval's test split is published without answers
        splits["test"] = [(q, o, "") for q, o, _ in items[5:]]
      for split, rows in splits.items():
        if task == "ceval":
          _write_csv(os.path.join(d, split, f"{subject}_{split}.csv"),
                     ("id", "question", "A", "B", "C", "D", "answer", "explanation"),
                     [(i, q, *o, a, "") for i, (q, o, a) in enumerate(rows)])
        elif task == "mmlu":
          _write_csv(os.path.join(d, split, f"{subject}_{split}.csv"), None,
                     [(q, *o, a) for q, o, a in rows])
        else:
          _write_csv(os.path.join(d, split, f"{subject}.csv"), ("", "Question", "A", "B", "C", "D", "Answer"),
                     [(i, q, *o, a) for i, (q, o, a) in enumerate(rows)])
      counts[task] = counts.get(task, 0) + len(items)
    if task == "ceval":
      with open(os.path.join(d, "subject_mapping.json"), "w", encoding="utf-8") as f:
        json.dump({s: list(CEVAL_SUBJECTS[s]) for s in subjects}, f, ensure_ascii=False, indent=2)
  return counts
