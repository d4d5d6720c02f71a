"""RL prompts: JSONL `{"prompt", "category"?}` or `{"conversations": [... ending with a user turn]}`,
rendered with the chat template and left-padded to a fixed length (one compile)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from xy_jax.data.clean.prompts import PromptDedupSettings, dialogue_text, drop_duplicates
from xy_jax.data.sft import BadRecord, parse_turns
from xy_jax.data.sources import SkipReport, expand_paths, read_jsonl
from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer
from xy_jax.infer.generate import left_pad


@dataclasses.dataclass
class Prompt:
  ids: list[int]
  text: str
  category: str
  where: str = ""  # file:line
  dialogue: str = ""  # every turn but the system message: what prompt dedup compares


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
      out.append(Prompt(ids, messages[-1].content, category, where, dialogue_text(messages)))
  return out


def drop_duplicate_prompts(prompts: list[Prompt], report: SkipReport, mode: str) -> list[Prompt]:
  """The prompts without exact or near duplicates of an earlier one (`data.dedup_prompts`: near,
  exact or off); each one dropped is counted in `report` with its file and line."""
  return drop_duplicates(prompts, [p.dialogue for p in prompts], [p.where for p in prompts], report,
                         PromptDedupSettings(mode=mode))


def prompt_batch(prompts: Sequence[Prompt], length: int, pad_id: int) -> dict[str, np.ndarray]:
  """Prompts left-padded to `length`: {'prompt_tokens', 'prompt_valid'} (int32)."""
  tokens, valid = left_pad([p.ids for p in prompts], pad_id, length=length)
  return {"prompt_tokens": tokens, "prompt_valid": valid.astype(np.int32)}
