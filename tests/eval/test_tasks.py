"""Reading the published layouts: subjects, prompts, and bad input counted with file:line."""

import os

import pytest

from xy_jax.eval.prompts import context
from xy_jax.eval.sample_data import write_benchmarks
from xy_jax.eval.subjects import CEVAL_SUBJECTS, CMMLU_SUBJECTS, FINANCEIQ_SUBJECTS, MMLU_SUBJECTS
from xy_jax.eval.tasks import load_split
from xy_jax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "data", "eval", "bench")


def test_subject_tables_are_complete():
  assert (len(CEVAL_SUBJECTS), len(CMMLU_SUBJECTS), len(MMLU_SUBJECTS), len(FINANCEIQ_SUBJECTS)) == (52, 67, 57, 10)
  assert {v[2] for v in CEVAL_SUBJECTS.values()} == {"STEM", "Social Science", "Humanities", "Other"}


def test_shipped_samples_are_what_make_data_writes(tmp_path):
  write_benchmarks(str(tmp_path))
  for root, _, files in os.walk(tmp_path):
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), tmp_path)
      with open(os.path.join(root, name), "rb") as a, open(os.path.join(SHIPPED, rel), "rb") as b:
        assert a.read() == b.read(), rel


@pytest.mark.parametrize("task,split,subjects", [
    ("ceval", "val", 3), ("cmmlu", "test", 3), ("mmlu", "test", 3), ("financeiq", "test", 3)])
def test_every_layout_reads(task, split, subjects):
  s = load_split(task, os.path.join(SHIPPED, task))
  assert s.split == split and len(s.subjects) == subjects and s.report.total == 0
  assert all(len(shots) == 5 for shots in s.shots.values()) and len(s.items) > 50
  assert [i.index for i in s.items if i.subject == s.items[0].subject][:3] == [0, 1, 2]


def test_lm_eval_prompt_text():
  s = load_split("ceval", os.path.join(SHIPPED, "ceval"), subjects=("accountant",), shots=2, limit=1)
  shot, item = s.shots["accountant"][0], s.items[0]
  text = context(s, item)
  assert text.startswith("以下是中国关于注册会计师的单项选择题，请选出其中的正确答案。\n\n"
                         f"{shot.question}\nA. {shot.options[0]}\nB. {shot.options[1]}\n")
  assert f"D. {shot.options[3]}\n答案： {shot.answer}\n\n" in text
  assert text.endswith(f"{item.question}\nA. {item.options[0]}\nB. {item.options[1]}\nC. "
                       f"{item.options[2]}\nD. {item.options[3]}\n答案：")
  fin = load_split("financeiq", os.path.join(SHIPPED, "financeiq"), subjects=("理财规划师",), shots=1, limit=1)
  text = context(fin, fin.items[0])
  assert text.startswith("以下是关于理财规划师的单项选择题，请直接给出正确答案的选项。\n\n题目：")
  assert f"答案是：{fin.shots['理财规划师'][0].answer}\n\n题目：" in text and text.endswith("答案是：")
  mmlu = load_split("mmlu", os.path.join(SHIPPED, "mmlu"), subjects=("high_school_macroeconomics",), limit=1)
  assert context(mmlu, mmlu.items[0]).startswith(
      "The following are multiple choice questions (with answers) about high school macroeconomics.\n\n")


def _cmmlu(tmp_path, test_text, dev_rows=5):
  for split, text in (("test", test_text),
                      ("dev", ",Question,A,B,C,D,Answer\n" + "".join(f"{i},问{i},甲,乙,丙,丁,A\n"
                                                                      for i in range(dev_rows)))):
    os.makedirs(tmp_path / split, exist_ok=True)
    (tmp_path / split / "economics.csv").write_text(text, encoding="utf-8")


def test_bad_rows_are_counted_with_file_and_line(tmp_path):
  _cmmlu(tmp_path, ",Question,A,B,C,D,Answer\n0,好问题,甲,乙,丙,丁,B\n1,缺一列,甲,乙,丙\n"
                   '2,"两行的\n问题",甲,乙,丙,丁,C\n3,答案错,甲,乙,丙,丁,E\n\n4,又一题,甲,乙,丙,丁, D \n')
  s = load_split("cmmlu", str(tmp_path))
  path = tmp_path / "test" / "economics.csv"
  assert [(i.index, i.answer, i.where) for i in s.items] == [
      (0, "B", f"{path}:2"), (2, "C", f"{path}:4"), (4, "D", f"{path}:8")]
  assert s.items[1].question == "两行的\n问题"
  assert s.report.counts == {"5 columns, expected at least 7": 1, "answer 'E' is not one of A-D": 1}
  assert f"{path}:3: 5 columns, expected at least 7" in s.report.examples
  assert f"{path}:6: answer 'E' is not one of A-D" in s.report.examples


def test_bad_files_and_short_dev_splits_skip_their_subject(tmp_path):
  _cmmlu(tmp_path, ",Question,A,B,C,D,Answer\n0,好问题,甲,乙,丙,丁,B\n", dev_rows=3)
  (tmp_path / "test" / "agronomy.csv").write_text(",Question,A,B,C\n0,q,a,b,c\n", encoding="utf-8")
  (tmp_path / "test" / "arts.csv").write_text("", encoding="utf-8")
  (tmp_path / "dev" / "arts.csv").write_text("", encoding="utf-8")
  s = load_split("cmmlu", str(tmp_path), shots=5)
  assert s.items == [] and sorted(s.report.examples) == sorted([
      f"{tmp_path}/test/agronomy.csv:1: missing column 'D' in the header",
      f"{tmp_path}/dev/agronomy.csv: 0 valid dev rows for 5 shots: subject 'agronomy' (0 items) skipped",
      f"{tmp_path}/test/arts.csv: empty file", f"{tmp_path}/dev/arts.csv: empty file",
      f"{tmp_path}/dev/arts.csv: 0 valid dev rows for 5 shots: subject 'arts' (0 items) skipped",
      f"{tmp_path}/dev/economics.csv: 3 valid dev rows for 5 shots: subject 'economics' (1 items) skipped"])
  assert len(load_split("cmmlu", str(tmp_path), shots=3).items) == 1


@pytest.mark.parametrize("kwargs,message", [
    ({"task": "gsm8k"}, "--task='gsm8k': choose one of"),
    ({"split": "val"}, "--split='val': cmmlu has dev, test"),
    ({"subjects": ("law",)}, "--subjects: 'law' has no file"),
])
def test_bad_arguments_are_one_line(kwargs, message):
  args = {"task": "cmmlu", "data_dir": os.path.join(SHIPPED, "cmmlu"), **kwargs}
  with pytest.raises(ConfigError, match=message):
    load_split(**args)


def test_a_folder_without_the_layout_is_named(tmp_path):
  with pytest.raises(ConfigError, match=r"no .*/val \(a ceval layout has dev, val, test/"):
    load_split("ceval", str(tmp_path))


ROWS = [f"{i},问题{i},甲,乙,丙,丁,{'ABCD'[i % 4]}\n" for i in range(24)]


@pytest.mark.parametrize("edits,skipped_lines", [
    ({2: '2,"问题2,甲,乙,丙,丁,C\n'}, [4]),  # never closed: would swallow the 21 rows after it
    ({10: '10,"问题10,甲,乙,丙,丁,C\n', 11: '11,问题11",甲,乙,丙,丁,D\n'}, [12]),  # would merge rows 10 and 11
    ({10: '10,"问题10,甲,乙,丙,丁,C\n', 11: '11,"问题11,甲,乙,丙,丁,D\n'}, [12, 13]),
    ({5: '5,"两行的\n问题",甲,乙,丙,丁,B\n'}, []),  # a real two-line question
])
def test_a_stray_quote_costs_its_own_row_only(tmp_path, edits, skipped_lines):
  rows = [edits.get(i, r) for i, r in enumerate(ROWS)]
  _cmmlu(tmp_path, ",Question,A,B,C,D,Answer\n" + "".join(rows))
  s = load_split("cmmlu", str(tmp_path))
  path = tmp_path / "test" / "economics.csv"
  assert len(s.items) + s.report.total == 24 and s.report.total == len(skipped_lines)
  assert s.report.examples == [f'{path}:{line}: unbalanced quote: the field its " opens runs over the rows after it'
                               for line in skipped_lines]
  assert all(i.answer == "ABCD"[i.index % 4] for i in s.items)


def test_a_file_not_in_utf8_is_named_with_its_line_and_read_with_its_encoding(tmp_path):
  for split in ("test", "dev"):
    os.makedirs(tmp_path / split)
    (tmp_path / split / "economics.csv").write_text(",Question,A,B,C,D,Answer\n" + "".join(ROWS), encoding="gbk")
  s = load_split("cmmlu", str(tmp_path), shots=0)
  assert s.items == [] and s.report.total == 24
  assert s.report.examples == [f"{tmp_path}/test/economics.csv:2: not UTF-8 (byte 0xce); convert it (iconv -f GBK "
                               "-t UTF-8) or, if every file is GBK, set --encoding=gbk"]
  s = load_split("cmmlu", str(tmp_path), encoding="gbk")
  assert len(s.items) == 24 and s.items[3].question == "问题3" and s.report.total == 0


def test_mmlu_rows_without_a_header_keep_their_multi_line_questions(tmp_path):
  text = 'q0,a,b,c,d,A\n"first line\nsecond line",a,b,c,d,B\n"q2,a,b,c,d,C\nq3,a,b,c,d,D\n'
  for split in ("test", "dev"):
    os.makedirs(tmp_path / split)
    (tmp_path / split / "anatomy_test.csv" if split == "test" else tmp_path / split / "anatomy_dev.csv").write_text(
        text, encoding="utf-8")
  s = load_split("mmlu", str(tmp_path), shots=0)
  assert [(i.index, i.question, i.answer) for i in s.items] == [
      (0, "q0", "A"), (1, "first line\nsecond line", "B"), (3, "q3", "D")]
  assert s.report.examples == [f'{tmp_path}/test/anatomy_test.csv:4: unbalanced quote: the field its " opens '
                               "runs over the rows after it"]
