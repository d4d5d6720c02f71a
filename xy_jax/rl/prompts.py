"""RL prompts: JSONL `{"prompt", "category"?}` or `{"conversations": [... ending with a user turn]}`,
rendered with the chat template and left-padded to a fixed length (one compile)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from xy_jax.data.sft import BadRecord, parse_turns
from xy_jax.data.sources import SkipReport, expand_paths, read_jsonl
from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer


@dataclasses.dataclass
class Prompt:
  ids: list[int]
  text: str
  category: str


def parse_prompt(record) -> tuple[list[Message], str]:
  if not isinstance(record, dict):
    raise BadRecord("not a JSON object")
  category = str(record.get("category", "general"))
  if isinstance(record.get("prompt"), str) and record["prompt"].strip():
    return [Message("user", record["prompt"])], category
  if "conversations" in record:
    messages = parse_turns(record["conversations"])
    if messages[-1].role != "user":
      raise BadRecord("the conversation must end with a user turn")
    return messages, category
  raise BadRecord("no non-empty \"prompt\" or \"conversations\"")


def read_prompts(patterns: Sequence[str] | str, field: str, tok: Tokenizer, template: ChatTemplate,
                 max_len: int, report: SkipReport) -> list[Prompt]:
  out = []
  for path in expand_paths(patterns, field):
    for where, record in read_jsonl(path, report):
      try:
        messages, category = parse_prompt(record)
      except BadRecord as e:
        report.skip(where, str(e))
        continue
      ids = template.encode_prompt(tok, messages)
      if len(ids) > max_len:
        report.skip(where, f"prompt longer than ppo.max_prompt_len={max_len}")
        continue
      out.append(Prompt(ids, messages[-1].content, category))
  return out


def left_padded(prompts: Sequence[Prompt], length: int, pad_id: int) -> dict[str, np.ndarray]:
  tokens = np.full((len(prompts), length), pad_id, np.int32)
  valid = np.zeros((len(prompts), length), np.int32)
  for i, p in enumerate(prompts):
    tokens[i, length - len(p.ids):] = p.ids
    valid[i, length - len(p.ids):] = 1
  return {"prompt_tokens": tokens, "prompt_valid": valid}


class PromptSteps:
  """grain random-access source: index = PPO iteration, element = this process's prompts."""

  def __init__(self, prompts: Sequence[Prompt], per_step: int, length: int, pad_id: int, seed: int,
               num_steps: int, process_index: int = 0, process_count: int = 1, ptx=None,
               seq_len: int | None = None):
    self.prompts, self.per_step, self.length, self.pad_id = list(prompts), per_step, length, pad_id
    self.seed, self.num_steps = seed, num_steps
    self.process_index, self.process_count = process_index, process_count
    self.steps_per_epoch = max(len(self.prompts) // per_step, 1)
    self.ptx = ptx  # optional StepBatches of pretraining rows for the ptx loss
    self.seq_len = seq_len or length  # prompt + answer: the row length reported as "bucket"

  def __len__(self) -> int:
    return self.num_steps

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    epoch, k = divmod(int(step), self.steps_per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(len(self.prompts))
    order = np.resize(order, self.steps_per_epoch * self.per_step)
    chosen = order[k * self.per_step:(k + 1) * self.per_step]
    share = self.per_step // self.process_count
    mine = chosen[self.process_index * share:(self.process_index + 1) * share]
    batch = left_padded([self.prompts[i] for i in mine], self.length, self.pad_id)
    if self.ptx is not None:
      rows = self.ptx[step]
      batch.update({f"ptx_{k}": v for k, v in rows.items() if k in ("tokens", "positions",
                                                                    "segment_ids", "loss_mask")})
    batch["bucket"] = np.asarray(self.seq_len, np.int32)
    return batch
