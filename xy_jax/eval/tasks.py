"""The four benchmarks: their published file layouts, subjects, and prompt formats.

Layouts, as users download them:
  C-Eval     {dev,val,test}/{subject}_{split}.csv   id,question,A,B,C,D,answer[,explanation]
             (+ subject_mapping.json: subject -> [English name, Chinese name, category])
  CMMLU      {dev,test}/{subject}.csv               ,Question,A,B,C,D,Answer
  FinanceIQ  {dev,test}/{subject}.csv               ,Question,A,B,C,D,Answer
  MMLU       {dev,val,test}/{subject}_{split}.csv   no header: question,A,B,C,D,answer

Prompts are lm-evaluation-harness 0.4's (`ceval-valid`, `cmmlu`, `mmlu`): the subject description,
the first k dev rows as shots (`question.strip()` and the options, "答案：" / "Answer:", a space
and the answer letter, then a blank line), then the question. FinanceIQ has no lm-eval task: its
own published format is used ("题目：" ... "答案是：" followed directly by the letter).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import os

from xy_jax.data.sources import SkipReport
from xy_jax.eval.subjects import CEVAL_SUBJECTS, CMMLU_SUBJECTS, FINANCEIQ_SUBJECTS, MMLU_SUBJECTS
from xy_jax.errors import ConfigError

LETTERS = ("A", "B", "C", "D")


@dataclasses.dataclass(frozen=True)
class Item:
  subject: str
  index: int  # data row in the split file, from 0
  question: str
  options: tuple[str, str, str, str]
  answer: str  # "A".."D"
  where: str  # file:line


@dataclasses.dataclass(frozen=True)
class Benchmark:
  name: str
  splits: tuple[str, ...]
  default_split: str  # the split lm-eval scores
  description: str  # "{subject}" is the subject's prompt name
  question: str  # "{question}", "{A}".."{D}"
  strip_question: bool
  target_delimiter: str  # between the prompt and the answer letter
  file_pattern: str  # "{split}", "{subject}"
  header: tuple[str, ...] | None  # the columns we read, by header name (None: positional)
  fewshot_delimiter: str = "\n\n"

  def path(self, data_dir: str, split: str, subject: str) -> str:
    return os.path.join(data_dir, self.file_pattern.format(split=split, subject=subject))

  def text(self, item: Item) -> str:
    q = item.question.strip() if self.strip_question else item.question
    return self.question.format(question=q, **dict(zip(LETTERS, item.options)))


BENCHMARKS = {
    "ceval": Benchmark("ceval", ("dev", "val", "test"), "val",
                       "以下是中国关于{subject}的单项选择题，请选出其中的正确答案。\n\n",
                       "{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n答案：", True, " ",
                       "{split}/{subject}_{split}.csv", ("question", "A", "B", "C", "D", "answer")),
    "cmmlu": Benchmark("cmmlu", ("dev", "test"), "test",
                       "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
                       "{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n答案：", True, " ",
                       "{split}/{subject}.csv", ("Question", "A", "B", "C", "D", "Answer")),
    "financeiq": Benchmark("financeiq", ("dev", "test"), "test",
                           "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
                           "题目：{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n答案是：", False, "",
                           "{split}/{subject}.csv", ("Question", "A", "B", "C", "D", "Answer")),
    "mmlu": Benchmark("mmlu", ("dev", "val", "test"), "test",
                      "The following are multiple choice questions (with answers) about {subject}.\n\n",
                      "{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer:", True, " ",
                      "{split}/{subject}_{split}.csv", None),
}


def subject_table(task: str, data_dir: str) -> dict[str, tuple[str, str]]:
  """subject -> (name used in the prompt, category), in the benchmark's order. C-Eval reads the
  data's own `subject_mapping.json` when present (else the built-in table of its 52 subjects)."""
  if task == "ceval":
    mapping = os.path.join(data_dir, "subject_mapping.json")
    if os.path.isfile(mapping):
      try:
        with open(mapping, encoding="utf-8") as f:
          return {k: (v[1], v[2]) for k, v in json.load(f).items()}
      except (ValueError, OSError, IndexError, TypeError, AttributeError) as e:
        raise ConfigError(f"{mapping}: expected {{subject: [English, Chinese, category]}} ({e})") from None
    return {k: (v[1], v[2]) for k, v in CEVAL_SUBJECTS.items()}
  if task == "cmmlu":
    return dict(CMMLU_SUBJECTS)
  if task == "mmlu":  # lm-eval writes the key with spaces for underscores
    return {k: (" ".join(k.split("_")), c) for k, c in MMLU_SUBJECTS.items()}
  # The file name is the prompt name; each exam is its own category (named in English for plots).
  return {k: (k, v[0]) for k, v in FINANCEIQ_SUBJECTS.items()}


def field_name(field: str | None):
  """How an error names a setting: the tool's flag (`--shots`) or, inside a config, the field
  (`train.eval_tasks[0].shots`)."""
  return (lambda name: f"--{name}") if field is None else (lambda name: f"{field}.{name}")


def _complete_row(line: str, columns: list[int]) -> bool:
  """Whether `line` alone, its quote marks dropped, holds every column and an answer letter."""
  try:
    row = next(csv.reader([line.replace('"', "")]), [])
  except csv.Error:
    return False
  return len(row) > max(columns) and row[columns[-1]].strip() in LETTERS


def _records(lines: list[str], start: int, columns: list[int] | None):
  """(line from 1, lines used, row or None, why not) per CSV record from lines[start:]. A record whose
  lines before its last are complete rows on their own is a quote opened by mistake (a stray `"`
  would otherwise swallow the rows after it, or merge two rows): it is refused and reading resumes
  on the next line."""
  i = start
  while i < len(lines):
    reader = csv.reader(lines[k] for k in range(i, len(lines)))
    try:
      row = next(reader)
    except csv.Error as e:
      yield i + 1, 1, None, f"unreadable CSV ({e}{'; an unbalanced quote?' if 'field limit' in str(e) else ''})"
      i += 1
      continue
    used = reader.line_num
    if used > 1 and columns and any(_complete_row(lines[k], columns) for k in range(i, i + used - 1)):
      yield i + 1, 1, None, 'unbalanced quote: the field its " opens runs over the rows after it'
      i += 1
      continue
    yield i + 1, used, row, None
    i += used


def _decoded_lines(path: str, report: SkipReport, encoding: str):
  """(the file's lines, None) with a UTF-8 byte-order mark dropped; (its lines with bad bytes
  replaced, (line, byte) of the first bad one) when it is not `encoding`; None, reported, when it
  cannot be read."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    report.skip(path, f"unreadable file ({e.strerror})")
    return None
  codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
  try:
    return list(io.StringIO(raw.decode(codec), newline="")), None
  except UnicodeDecodeError as e:
    lines = list(io.StringIO(raw.decode(codec, errors="replace"), newline=""))
    return lines, (raw.count(b"\n", 0, e.start) + 1, raw[e.start])


def read_items(bench: Benchmark, path: str, subject: str, report: SkipReport, encoding: str = "utf-8",
               encoding_field: str = "--encoding") -> list[Item]:
  """Every valid row of one split file; bad rows and files are reported as file:line. A file that
  is not `encoding` is skipped whole, each of its rows counted."""
  decoded = _decoded_lines(path, report, encoding)
  if decoded is None:
    return []
  lines, bad = decoded
  items, rows = _parse_rows(bench, path, subject, lines, report if bad is None else SkipReport())
  if bad is None:
    return items
  line, byte = bad
  utf8 = codecs.lookup(encoding).name == "utf-8"
  reason = (f"not UTF-8 (byte 0x{byte:02x}); convert it (iconv -f GBK -t UTF-8) or, if every file is "
            f"GBK, set {encoding_field}=gbk" if utf8 else
            f"not {encoding} (byte 0x{byte:02x}), which {encoding_field} names for every file")
  report.skip(f"{path}:{line}", reason)
  report.counts[reason] += max(rows, 1) - 1  # every row of the file is lost
  return []


def _parse_rows(bench: Benchmark, path: str, subject: str, lines: list[str],
                report: SkipReport) -> tuple[list[Item], int]:
  """The valid items of a split file's lines, and how many data rows it has."""
  if bench.header is not None:
    _, first, header, _ = next(_records(lines, 0, None), (0, 0, None, None))
    if header is None:
      report.skip(path, "empty file")
      return [], 0
    missing = [c for c in bench.header if c not in header]
    if missing:
      report.skip(f"{path}:1", f"missing column {missing[0]!r} in the header")
      return [], 0
    columns = [header.index(c) for c in bench.header]
  else:
    columns, first = list(range(6)), 0
  items: list[Item] = []
  index = 0
  for line, _, row, problem in _records(lines, first, columns):
    where = f"{path}:{line}"
    if row is not None and not any(cell.strip() for cell in row):  # blank lines are no rows (as pandas reads it)
      continue
    index += 1
    if problem:
      report.skip(where, problem)
      continue
    if len(row) <= max(columns):
      report.skip(where, f"{len(row)} columns, expected at least {max(columns) + 1}")
      continue
    question, a, b, c, d, answer = (row[i] for i in columns)
    answer = answer.strip()
    if answer not in LETTERS:
      report.skip(where, f"answer {answer!r} is not one of A-D")
      continue
    items.append(Item(subject, index - 1, question, (a, b, c, d), answer, where))
  if index == 0:
    report.skip(path, "empty file")
  return items, index


@dataclasses.dataclass
class Split:
  """The items of one benchmark split, with each subject's shots (first k valid dev rows)."""

  bench: Benchmark
  split: str
  items: list[Item]
  shots: dict[str, list[Item]]
  subjects: dict[str, tuple[str, str]]  # subject -> (prompt name, category), evaluated ones
  report: SkipReport
  # Subjects left out because their dev split has fewer valid rows than the shots: -> (dev file, rows)
  short_dev: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)


def _subjects_on_disk(bench: Benchmark, data_dir: str, split: str, table: dict[str, tuple[str, str]],
                      name) -> list[str]:
  folder = os.path.dirname(bench.path(data_dir, split, "x"))
  if not os.path.isdir(folder):
    raise ConfigError(f"{name('data_dir')}={data_dir}: no {folder} (a {bench.name} layout has "
                      f"{', '.join(bench.splits)}/ with {bench.file_pattern.split('/')[1]})")
  prefix, suffix = os.path.basename(bench.path("", split, "\0")).split("\0")
  names = sorted(n[len(prefix):len(n) - len(suffix)] for n in os.listdir(folder)
                 if n.startswith(prefix) and n.endswith(suffix) and len(n) > len(prefix + suffix))
  return [s for s in table if s in names] + [s for s in names if s not in table]


def load_split(task: str, data_dir: str, split: str | None = None, subjects=None, shots: int = 5,
               limit: int | None = None, encoding: str = "utf-8", field: str | None = None) -> Split:
  """Read a benchmark split from its published layout. `subjects`: a subset (default: every
  subject with a file); `limit`: the first N items of each subject. Bad rows, files and subjects
  whose dev split has fewer valid rows than `shots` are reported and skipped. Errors name the
  settings as the tool's flags, or as `field`.task, ... (a config's eval task)."""
  name = field_name(field)
  if task not in BENCHMARKS:
    raise ConfigError(f"{name('task')}={task!r}: choose one of {', '.join(BENCHMARKS)}")
  bench = BENCHMARKS[task]
  split = split or bench.default_split
  if split not in bench.splits:
    raise ConfigError(f"{name('split')}={split!r}: {task} has {', '.join(bench.splits)}")
  table = subject_table(task, data_dir)
  found = _subjects_on_disk(bench, data_dir, split, table, name)
  if subjects:
    for s in subjects:
      if s not in found:
        raise ConfigError(f"{name('subjects')}: {s!r} has no file {bench.path(data_dir, split, s)}")
    found = [s for s in found if s in subjects]
  if not found:
    raise ConfigError(f"{name('data_dir')}={data_dir}: no {task} file for split {split!r} "
                      f"({bench.path(data_dir, split, '{subject}')})")
  report = SkipReport()
  items, shot_rows, names, short = [], {}, {}, {}
  read = lambda path, s: read_items(bench, path, s, report, encoding, name("encoding"))  # noqa: E731
  for s in found:
    subject_items = read(bench.path(data_dir, split, s), s)[:limit]
    if shots:
      dev_path = bench.path(data_dir, "dev", s)
      dev = read(dev_path, s) if os.path.isfile(dev_path) else []
      if len(dev) < shots:
        report.skip(dev_path, f"{len(dev)} valid dev rows for {shots} shots: subject {s!r} "
                              f"({len(subject_items)} items) skipped")
        short[s] = (dev_path, len(dev))
        continue
      shot_rows[s] = dev[:shots]
    items += subject_items
    names[s] = table.get(s, (" ".join(s.split("_")) if task == "mmlu" else s, "other"))
  return Split(bench, split, items, shot_rows, names, report, short)
