"""The text GPTQ calibrates on: files named PATH (a .txt, or a .jsonl's `text`), PATH:FIELD (a
.jsonl's FIELD) or PATH:sft (the user turns of an SFT file, in every format `data.sft` reads)."""

from __future__ import annotations

import os
from typing import Callable, Sequence

from xy_jax.data.sft import read_conversations
from xy_jax.data.sources import SkipReport, read_documents
from xy_jax.errors import ConfigError

# Text like what the model will read: the finance and general pretraining text and the questions
# of the SFT set. Without the finance text, GPTQ fitted the demo's chat model to general text and
# raised its held-out finance perplexity more than rounding did (+1.09% vs RTN's +0.49%; with it,
# +0.36%): calibration should cover the domain the model is judged on.
DEFAULT_CALIBRATION = ("data/pretrain/finance.jsonl", "data/pretrain/general.txt", "data/sft/finance_qa.jsonl:sft")


def calibration_docs(specs: Sequence[str], log: Callable[[str], None] = lambda _: None,
                     flag: str = "--calibration") -> list[str]:
  """The documents of every spec (bad records skipped, counted and logged)."""
  docs, report = [], SkipReport()
  for spec in specs:
    path, field = spec, "text"
    head, _, tail = spec.rpartition(":")
    if head and tail.isidentifier():
      path, field = head, tail
    if not os.path.isfile(path):
      raise ConfigError(f"{flag}={spec}: no such file")
    if field == "sft":
      docs += [m.content for turns in read_conversations(path, report) for m in turns if m.role == "user"]
    else:
      docs += read_documents(path, report, field)
  if report.total:
    log(f"{flag}: {report.summary()}")
  return docs
