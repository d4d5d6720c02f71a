"""Prompt text: lm-evaluation-harness's few-shot context for log-likelihood scoring, and the chat
message for generate mode."""

from __future__ import annotations

from xy_jax.eval.tasks import LETTERS, Item, Split


def context(split: Split, item: Item) -> str:
  """description + each shot (question, target delimiter, its letter, blank line) + question."""
  bench = split.bench
  name = split.subjects[item.subject][0]
  shots = "".join(bench.text(s) + bench.target_delimiter + s.answer + bench.fewshot_delimiter
                  for s in split.shots.get(item.subject, ()))
  return bench.description.format(subject=name) + shots + bench.text(item)


def continuations(split: Split) -> list[str]:
  """What is scored after the context: the target delimiter and each answer letter."""
  return [split.bench.target_delimiter + letter for letter in LETTERS]
