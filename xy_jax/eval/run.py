"""One benchmark evaluation of one model: read the split, score every item, summarise.

`loglik` (base models): lm-eval's prompts and log-likelihood of each answer letter; the prediction
is the argmax. `generate` (chat models, FinanceIQ's 0-shot protocol): the question in the XuanYuan
chat template, greedy decoding, the letter extracted from the text (unparseable answers count as
wrong and are reported apart). Used by `tools/evaluate.py` and, on the live parameters, by the
training loop (`train.eval_tasks`).
"""

from __future__ import annotations

import codecs
import dataclasses
import time
from typing import Any

import numpy as np
from flax import nnx

from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer
from xy_jax.eval.extract import extract_choice
from xy_jax.eval.loglik import LoglikScorer, bucket_length, encode_pair, question_rows
from xy_jax.eval.prompts import context, continuations
from xy_jax.eval.tasks import BENCHMARKS, LETTERS, Split, field_name, load_split
from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.errors import ConfigError
from xy_jax.sharding import LogicalSharding

MODES = ("loglik", "generate")


@dataclasses.dataclass(frozen=True)
class EvalSpec:
  task: str
  data_dir: str
  split: str | None = None  # None: the split lm-eval scores (C-Eval: val; others: test)
  mode: str = "loglik"
  shots: int | None = None  # None: 5 for loglik, 0 for generate
  subjects: tuple[str, ...] | None = None
  limit: int | None = None  # items per subject
  max_new_tokens: int = 64  # generate mode
  batch_tokens: int = 16384  # tokens per scoring batch (loglik) / prompt tokens per batch (generate)
  encoding: str = "utf-8"  # of the CSV files

  @property
  def num_shots(self) -> int:
    return self.shots if self.shots is not None else (5 if self.mode == "loglik" else 0)

  @classmethod
  def from_dict(cls, d: dict, field: str = "train.eval_tasks") -> "EvalSpec":
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise ConfigError(f"{field}.{unknown[0]}: not a field (fields: {', '.join(sorted(names))})")
    if "task" not in d or "data_dir" not in d:
      raise ConfigError(f"{field}: needs task and data_dir (fields: {', '.join(sorted(names))})")
    d = dict(d)
    if isinstance(d.get("subjects"), (list, tuple)):
      d["subjects"] = tuple(d["subjects"])
    spec = cls(**d)
    spec.check(field)
    return spec

  def check(self, field: str | None = None) -> None:
    """Every setting that needs no file; errors name them as flags (--shots) or `field`.shots."""
    name = field_name(field)

    def need(ok: bool, setting: str, what: str) -> None:
      if not ok:
        raise ConfigError(f"{name(setting)}={getattr(self, setting)!r}: {what}")

    need(self.task in BENCHMARKS, "task", f"choose one of {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[self.task]
    need(isinstance(self.data_dir, str) and bool(self.data_dir), "data_dir", "the benchmark's folder")
    need(self.split is None or self.split in bench.splits, "split", f"{self.task} has {', '.join(bench.splits)}")
    need(self.mode in MODES, "mode", f"one of {', '.join(MODES)}")
    need(self.shots is None or _count(self.shots), "shots", "an integer >= 0")
    need(self.limit is None or (_count(self.limit) and self.limit > 0), "limit", "an integer >= 1 (items per subject)")
    need(self.subjects is None or (isinstance(self.subjects, tuple) and all(isinstance(s, str) for s in self.subjects)),
         "subjects", "a list of subject names (file names without suffix)")
    need(_count(self.max_new_tokens) and self.max_new_tokens > 0, "max_new_tokens", "an integer >= 1")
    need(_count(self.batch_tokens) and self.batch_tokens > 0, "batch_tokens", "an integer >= 1")
    need(_known_encoding(self.encoding), "encoding", "not an encoding Python knows (e.g. utf-8, gbk)")


def check_fits(spec: EvalSpec, max_len: int, field: str | None = None) -> None:
  """Generated answers need room for a prompt within the model's positions."""
  if spec.mode == "generate" and spec.max_new_tokens >= max_len:
    raise ConfigError(f"{field_name(field)('max_new_tokens')}={spec.max_new_tokens}: leaves no room for "
                      f"the question in the model's {max_len} positions")


def _count(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _known_encoding(name) -> bool:
  try:
    codecs.lookup(name)
  except (LookupError, TypeError):
    return False
  return True


def read_split(spec: EvalSpec, field: str | None = None) -> Split:
  """The split `spec` scores, read and checked before a model is loaded or a step trained: a split
  with nothing left to score is an error naming the setting (the shots, or the data)."""
  name = field_name(field)
  split = load_split(spec.task, spec.data_dir, spec.split, spec.subjects, spec.num_shots, spec.limit,
                     spec.encoding, field)
  if split.items:
    return split
  most = max((n for _, n in split.short_dev.values()), default=0)
  if most:
    dev, n = next(iter(split.short_dev.values()))
    raise ConfigError(f"{name('shots')}={spec.num_shots}: more than the valid dev rows of every subject "
                      f"({dev}: {n}); at most {most} here")
  example = f", e.g. {split.report.examples[0]}" if split.report.examples else ""
  raise ConfigError(f"{name('data_dir')}={spec.data_dir}: no {spec.task} item to score; "
                    f"{split.report.total} skipped{example}")


@dataclasses.dataclass
class EvalResult:
  spec: EvalSpec
  split: Split
  records: list[dict[str, Any]]  # one per item (items.jsonl)
  seconds: float

  def summary(self) -> dict[str, Any]:
    """Accuracy per subject, per category (over items) and overall; `macro_accuracy` is the mean
    of the subject accuracies (FinanceIQ's overall score)."""
    subjects: dict[str, list[int]] = {}
    for r in self.records:
      subjects.setdefault(r["subject"], []).append(int(r["pred"] == r["gold"]))
    per_subject = {s: {"n": len(v), "accuracy": float(np.mean(v)),
                       "category": self.split.subjects[s][1]} for s, v in subjects.items()}
    per_category: dict[str, dict] = {}
    for s, v in subjects.items():
      c = per_category.setdefault(self.split.subjects[s][1], {"n": 0, "correct": 0})
      c["n"] += len(v)
      c["correct"] += sum(v)
    for c in per_category.values():
      c["accuracy"] = c.pop("correct") / c["n"]
    n = len(self.records)
    correct = sum(int(r["pred"] == r["gold"]) for r in self.records)
    out = {"task": self.spec.task, "split": self.split.split, "mode": self.spec.mode,
           "shots": self.spec.num_shots, "items": n, "accuracy": correct / n if n else 0.0,
           "macro_accuracy": float(np.mean([v["accuracy"] for v in per_subject.values()])) if n else 0.0,
           "per_subject": per_subject, "per_category": per_category,
           "skipped": dict(self.split.report.counts), "skipped_examples": self.split.report.examples,
           "seconds": self.seconds, "items_per_second": n / self.seconds if self.seconds else 0.0}
    if self.spec.mode == "generate":
      out["unparseable"] = sum(r["pred"] is None for r in self.records)
    return out


class Evaluator:
  """Evaluates a model (graphdef + parameters) on a benchmark; compiled programs are kept, so a
  training run evaluating every N steps compiles once."""

  def __init__(self, graphdef, tok: Tokenizer, sharding: LogicalSharding, max_len: int,
               template: ChatTemplate = ChatTemplate(), splits: dict[EvalSpec, Split] | None = None):
    """`splits`: already read (`read_split`), so that bad data stops a run before its model loads."""
    self.graphdef, self.tok, self.sharding, self.max_len = graphdef, tok, sharding, max_len
    self.template = template
    self._scorers: dict[int, LoglikScorer] = {}
    self._splits: dict[EvalSpec, Split] = dict(splits or {})

  def split(self, spec: EvalSpec) -> Split:
    if spec not in self._splits:
      self._splits[spec] = read_split(spec)
    return self._splits[spec]

  def evaluate(self, params, spec: EvalSpec, progress=None) -> EvalResult:
    """`progress(n)`: called as items finish (n of them), e.g. a tqdm bar's update."""
    progress = progress or (lambda n: None)
    split = self.split(spec)
    start = time.perf_counter()
    if spec.mode == "loglik":
      records = self._loglik(params, split, spec, progress)
    else:
      records = self._generate(params, split, spec, progress)
    return EvalResult(spec, split, records, time.perf_counter() - start)

  def _loglik(self, params, split: Split, spec: EvalSpec, progress) -> list[dict]:
    conts = continuations(split)
    rows = []
    for q, item in enumerate(split.items):
      ctx = context(split, item)
      rows += question_rows(q, [encode_pair(self.tok, ctx, c) for c in conts], self.max_len, item.subject)
    scorer = self._scorers.setdefault(spec.batch_tokens, LoglikScorer(
        self.graphdef, self.sharding, self.tok.pad_id, self.max_len, spec.batch_tokens))
    scores = scorer.score(params, rows, len(split.items), progress)
    return [{"task": spec.task, "subject": item.subject, "index": item.index, "gold": item.answer,
             "pred": LETTERS[int(np.argmax(s))], "loglik": dict(zip(LETTERS, map(float, s)))}
            for item, s in zip(split.items, scores)]

  def _generate(self, params, split: Split, spec: EvalSpec, progress) -> list[dict]:
    model = nnx.merge(self.graphdef, params)
    generator = Generator(model, self.tok.eos_id, self.tok.pad_id, unstack=False)
    sampling = SamplingConfig(greedy=True, max_new_tokens=spec.max_new_tokens)
    room = self.max_len - spec.max_new_tokens
    prompts = [self.template.encode_prompt(self.tok, [Message("user", context(split, item))])[-room:]
               for item in split.items]
    by_bucket: dict[int, list[int]] = {}
    for i in sorted(range(len(prompts)), key=lambda i: len(prompts[i])):
      by_bucket.setdefault(bucket_length(len(prompts[i]), self.max_len), []).append(i)
    texts: dict[int, str] = {}
    for length, members in by_bucket.items():
      size = max(1, spec.batch_tokens // (length + spec.max_new_tokens))
      for start in range(0, len(members), size):
        batch = members[start:start + size]
        out = generator.generate([prompts[i] for i in batch], sampling)
        texts.update({i: self.tok.decode(g.tokens) for i, g in zip(batch, out)})
        progress(len(batch))
    return [{"task": spec.task, "subject": item.subject, "index": item.index, "gold": item.answer,
             "pred": extract_choice(texts[i]), "text": texts[i]}
            for i, item in enumerate(split.items)]
