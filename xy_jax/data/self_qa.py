"""Self-QA (XuanYuan's way of turning unlabelled documents into SFT data).

Stage 1 asks a chat model for questions about a document; stage 2 asks it to answer each question
from that document. Pairs are then filtered and counted by reason: empty or short text, not a
question, a duplicate question, an answer that leans on "the document" or repeats the question,
and pairs not grounded in the document (numbers it does not contain, or too few of the question's
(60%) or the answer's (50%) character bigrams found in it). Kept pairs are written as SFT JSONL records with provenance:
the source `file:line`, the document, the model and the sampling settings.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence

# Prompts follow the seed paper's two stages (knowledge-guided question generation, then answers
# grounded in the document).
QUESTION_PROMPT = "请根据下面的文档提出{n}个问题，每行一个。\n文档：{doc}"
ANSWER_PROMPT = "请根据文档回答问题。\n文档：{doc}\n问题：{question}"

# Answers that point at the document make no sense without it in the SFT prompt.
_REFERS_TO_DOC = re.compile(r"文档|文中|上文|材料中|according to the (document|text)|the passage", re.I)
_NUMBERING = re.compile(r"^\s*(?:[-*•]|\(?\d+[.)、:：]|[Qq](?:uestion)?\s*\d*[.:：]|问题\s*\d*[.:：])\s*")

_QUESTION = re.compile(r"[？?]\s*$|什么|如何|怎样|怎么|为什么|为何|多少|哪|是否|吗|^(what|how|why|which|when|who|is|are|does|do|can)\b", re.I)

Generate = Callable[[Sequence[str]], list[str]]  # prompts -> completions (batched)


@dataclasses.dataclass
class SelfQAReport:
  documents: int = 0
  questions: int = 0
  kept: int = 0
  dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

  def summary(self) -> str:
    drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
    return (f"{self.documents} documents -> {self.questions} questions -> {self.kept} pairs kept "
            f"(dropped: {drops})")


def split_questions(text: str, limit: int) -> list[str]:
  """One question per line, numbering and bullets removed."""
  out = []
  for line in re.split(r"[\r\n]+", text):
    q = _NUMBERING.sub("", line).strip()
    if q:
      out.append(q)
  return out[:limit]


def _normalise(text: str) -> str:
  return re.sub(r"[\s，。？?！!、,.]+", "", text).lower()


def question_drop_reason(question: str, min_chars: int) -> str | None:
  if len(_normalise(question)) < min_chars:
    return "question empty or too short"
  if not _QUESTION.search(question.strip()):
    return "not a question"
  return None


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _bigrams(text: str) -> set[str]:
  t = _normalise(text)
  return {t[i:i + 2] for i in range(len(t) - 1)}


_QUESTION_WORDS = re.compile(r"什么是|是什么|什么|如何|怎样|怎么|为什么|为何|多少|哪些|哪个|是否|吗|请问|what|how|why|which", re.I)


def grounded(text: str, doc: str, min_overlap: float) -> bool:
  """Every number in `text` occurs in `doc`, and at least `min_overlap` of its character bigrams
  (question words aside) do: a cheap check that works for Chinese and English alike."""
  if not set(_NUMBER.findall(text)) <= set(_NUMBER.findall(doc)):
    return False
  grams = _bigrams(_QUESTION_WORDS.sub("", text))
  return not grams or len(grams & _bigrams(doc)) / len(grams) >= min_overlap


def answer_drop_reason(question: str, answer: str, doc: str, min_chars: int,
                       min_overlap: float = 0.5, min_question_overlap: float = 0.6) -> str | None:
  if len(_normalise(answer)) < min_chars:
    return "answer empty or too short"
  if _normalise(answer) == _normalise(question):
    return "answer repeats the question"
  if _REFERS_TO_DOC.search(answer):
    return "answer refers to the document"
  if not grounded(question, doc, min_question_overlap):
    return "question not grounded in the document"
  if not grounded(answer, doc, min_overlap):
    return "answer not grounded in the document"
  return None


def self_qa(documents: Iterable[tuple[str, str]], generate: Generate, questions_per_doc: int = 3,
            min_chars: int = 4, batch_size: int = 8, report: SelfQAReport | None = None,
            provenance: dict | None = None) -> Iterable[dict]:
  """Yield SFT records {"conversations": [...], "source": {...}, "generator": {...}}.

  `documents` are (`file:line`, text); `generate` maps a batch of prompts to completions.
  Questions already asked (after normalising punctuation and case) are dropped as duplicates,
  across the whole run.
  """
  report = report if report is not None else SelfQAReport()
  seen: set[str] = set()
  batch: list[tuple[str, str]] = []

  def flush():
    asked = generate([QUESTION_PROMPT.format(n=questions_per_doc, doc=doc) for _, doc in batch])
    pending = []
    for (where, doc), text in zip(batch, asked):
      qs = split_questions(text, questions_per_doc)
      if not qs:
        report.dropped["no question generated"] += 1
      for q in qs:
        report.questions += 1
        key = _normalise(q)
        reason = question_drop_reason(q, min_chars)
        if reason:
          report.dropped[reason] += 1
          continue
        if key in seen:
          report.dropped["duplicate question"] += 1
          continue
        seen.add(key)
        pending.append((where, doc, q))
    answers = generate([ANSWER_PROMPT.format(doc=doc, question=q) for _, doc, q in pending]) if pending else []
    for (where, doc, q), a in zip(pending, answers):
      a = a.strip()
      reason = answer_drop_reason(q, a, doc, min_chars)
      if reason:
        report.dropped[reason] += 1
        continue
      report.kept += 1
      yield {"conversations": [{"from": "human", "value": q}, {"from": "assistant", "value": a}],
             "source": {"location": where, "document": doc},
             "generator": dict(provenance or {}, method="self-qa")}

  for item in documents:
    report.documents += 1
    batch.append(item)
    if len(batch) == batch_size:
      yield from flush()
      batch = []
  if batch:
    yield from flush()
