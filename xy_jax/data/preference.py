"""Preference pairs for reward modelling: {"prompt", "chosen", "rejected"} JSONL (or the
conversation form: {"conversations": [...earlier turns ending with a user turn], "chosen", "rejected"}).

Each side is rendered with the chat template: BOS + prompt + response + `</s>`, right-padded. Pairs
that do not fit the row, pairs whose two sides are the same tokens (no preference to learn), and
malformed records are counted and reported with file and line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from xy_jax.data.sft import BadRecord, parse_turns
from xy_jax.data.sources import SkipReport, expand_paths, read_jsonl
from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer

SAME_SIDES = "chosen and rejected are the same tokens"


@dataclasses.dataclass
class Pairs:
  chosen: list[np.ndarray]
  rejected: list[np.ndarray]
  prompt_lens: list[int] = dataclasses.field(default_factory=list)  # tokens before the answers

  def __len__(self) -> int:
    return len(self.chosen)

  def subset(self, index: np.ndarray) -> "Pairs":
    return Pairs([self.chosen[i] for i in index], [self.rejected[i] for i in index],
                 [self.prompt_lens[i] for i in index])

  def extend(self, other: "Pairs") -> None:
    self.chosen += other.chosen
    self.rejected += other.rejected
    self.prompt_lens += other.prompt_lens

  def eval_batches(self, pairs_per_batch: int, length: int, pad_id: int,
                   answer_mask: bool = False) -> list[dict[str, np.ndarray]]:
    """Every pair once, in fixed-size batches; the last is completed with weight-0 filler pairs."""
    out = []
    for i in range(0, len(self), pairs_per_batch):
      index = list(range(i, min(i + pairs_per_batch, len(self))))
      weights = [1.0] * len(index) + [0.0] * (pairs_per_batch - len(index))
      index += [index[-1]] * (pairs_per_batch - len(index))
      out.append(pair_batch(self, index, length, pad_id, weights, answer_mask))
    return out


def parse_pair(record) -> tuple[list[Message], str, str]:
  if not isinstance(record, dict):
    raise BadRecord("not a JSON object")
  chosen, rejected = record.get("chosen"), record.get("rejected")
  if not isinstance(chosen, str) or not isinstance(rejected, str):
    raise BadRecord("missing \"chosen\" or \"rejected\" string")
  if not chosen.strip() or not rejected.strip():
    raise BadRecord("empty answer")
  if "conversations" in record:
    messages = parse_turns(record["conversations"])
    if messages[-1].role != "user":
      raise BadRecord("the conversation must end with a user turn")
  elif isinstance(record.get("prompt"), str):
    messages = [Message("user", record["prompt"])]
  else:
    raise BadRecord("no \"prompt\" string or \"conversations\" list")
  return messages, chosen, rejected


def encode_side(tok: Tokenizer, template: ChatTemplate, messages, answer: str) -> np.ndarray:
  return np.asarray(template.encode_prompt(tok, messages) + tok.encode(answer) + [tok.eos_id], np.int32)


def prompt_length(tok: Tokenizer, template: ChatTemplate, messages) -> int:
  return len(template.encode_prompt(tok, messages))


def read_pairs(patterns: Sequence[str] | str, field: str, tok: Tokenizer, template: ChatTemplate,
               max_len: int, report: SkipReport) -> Pairs:
  chosen, rejected, prompt_lens = [], [], []
  for path in expand_paths(patterns, field):
    for where, record in read_jsonl(path, report):
      try:
        messages, good, bad = parse_pair(record)
      except BadRecord as e:
        report.skip(where, str(e))
        continue
      c, r = encode_side(tok, template, messages, good), encode_side(tok, template, messages, bad)
      if np.array_equal(c, r):
        report.skip(where, SAME_SIDES)
        continue
      if max(len(c), len(r)) > max_len:
        report.skip(where, f"longer than the {max_len}-token row")
        continue
      chosen.append(c)
      rejected.append(r)
      prompt_lens.append(prompt_length(tok, template, messages))
  return Pairs(chosen, rejected, prompt_lens)


def pair_batch(pairs: Pairs, index: Sequence[int], length: int, pad_id: int,
               weights: Sequence[float] | None = None, answer_mask: bool = False) -> dict[str, np.ndarray]:
  """Rows [2P, length]: chosen at even rows, rejected at odd, so a pair never straddles devices.

  `weight` (per row, equal within a pair) is 0 for filler pairs that only complete a batch.
  `answer_mask` adds `loss_mask`: 1 at positions that predict an answer token (DPO).
  """
  rows = [seq for i in index for seq in (pairs.chosen[i], pairs.rejected[i])]
  w = np.ones(len(index), np.float32) if weights is None else np.asarray(weights, np.float32)
  batch = {**right_padded(rows, length, pad_id), "weight": np.repeat(w, 2)}
  if answer_mask:
    t = np.arange(length)[None]
    starts = np.repeat([pairs.prompt_lens[i] - 1 for i in index], 2)[:, None]
    ends = np.asarray([len(r) - 1 for r in rows])[:, None]  # position len-2 predicts the last token
    batch["loss_mask"] = ((t >= starts) & (t < ends)).astype(np.int32)
  return batch


def right_padded(seqs: Sequence[np.ndarray], length: int, pad_id: int) -> dict[str, np.ndarray]:
  """tokens / segment_ids (1 = real) / positions [len(seqs), length] for whole sequences."""
  tokens = np.full((len(seqs), length), pad_id, np.int32)
  segment_ids = np.zeros((len(seqs), length), np.int32)
  for r, seq in enumerate(seqs):
    tokens[r, :len(seq)] = seq
    segment_ids[r, :len(seq)] = 1
  positions = np.broadcast_to(np.arange(length, dtype=np.int32), tokens.shape).copy()
  return {"tokens": tokens, "segment_ids": segment_ids, "positions": positions}
