"""SFT conversations: parsing the common JSONL forms, rendering with the chat template, and the
answer-only target mask.

Accepted records (one per line):
  {"conversations": [{"from": "human", "value": ...}, {"from": "assistant", "value": ...}, ...]}
      roles: human/user, assistant/gpt, and an optional first system turn; "role"/"content" keys too
  {"prompt": ..., "response": ..., "system"?: ...}

Loss falls on every assistant turn's tokens and its closing </s>; prompts, the system message and
the template carry none. A bad record (no assistant turn, an empty answer, a missing field, an
unknown role, turns out of order) is counted and reported as `file:line: reason`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence

from xy_jax.data.clean.prompts import PromptDedupSettings, dialogue_text, drop_duplicates
from xy_jax.data.prepared import PreparedWriter
from xy_jax.data.provenance import fingerprint, refuse_stale_cleaning
from xy_jax.data.sources import SkipReport, expand_paths, read_jsonl
from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer
from xy_jax.io_utils import atomic_output_dir

ROLES = {"human": "user", "user": "user", "assistant": "assistant", "gpt": "assistant",
         "system": "system"}
TRUNCATION = ("drop_rounds", "skip")


class BadRecord(ValueError):
  pass


def parse_turns(turns) -> list[Message]:
  """A "conversations" list (from/value or role/content keys) as messages; raises BadRecord."""
  if not isinstance(turns, list) or not turns:
    raise BadRecord("\"conversations\" is not a non-empty list")
  messages = []
  for turn in turns:
    if not isinstance(turn, dict):
      raise BadRecord("a turn is not an object")
    role = turn.get("from", turn.get("role"))
    content = turn.get("value", turn.get("content"))
    if role not in ROLES:
      raise BadRecord(f"unknown role {role!r}")
    if not isinstance(content, str):
      raise BadRecord(f"a {role} turn has no text")
    messages.append(Message(ROLES[role], content))
  return messages


def parse_conversation(record) -> list[Message]:
  if not isinstance(record, dict):
    raise BadRecord("not a JSON object")
  if "conversations" in record:
    messages = parse_turns(record["conversations"])
  elif "prompt" in record or "response" in record:
    if not isinstance(record.get("prompt"), str) or not isinstance(record.get("response"), str):
      raise BadRecord("missing \"prompt\" or \"response\" string")
    messages = ([Message("system", record["system"])] if isinstance(record.get("system"), str) else [])
    messages += [Message("user", record["prompt"]), Message("assistant", record["response"])]
  else:
    raise BadRecord("no \"conversations\" or \"prompt\"/\"response\" fields")
  body = messages[1:] if messages[0].role == "system" else messages
  expected = "user"
  for m in body:
    if m.role != expected:
      raise BadRecord(f"turns out of order: {m.role} where {expected} was expected")
    if m.role == "assistant" and not m.content.strip():
      raise BadRecord("empty assistant answer")
    expected = "assistant" if expected == "user" else "user"
  if not any(m.role == "assistant" for m in body):
    raise BadRecord("no assistant turn")
  return messages


@dataclasses.dataclass
class Encoded:
  ids: list[int]
  targets: list[int]  # 1 where the token is part of an answer (including its </s>)
  round_ends: list[int]  # len(ids) after each complete round


def encode_conversation(tok: Tokenizer, template: ChatTemplate, messages: Sequence[Message]) -> Encoded:
  """BOS + rounds; prompts and answers encoded separately so the answer mask is exact."""
  system = messages[0].content if messages and messages[0].role == "system" else (template.system or "")
  body = messages[1:] if messages and messages[0].role == "system" else messages
  ids, targets, ends = [tok.bos_id], [0], []
  pending = system
  for m in body:
    if m.role == "user":
      pending += template.turn_prefix(m.content)
      continue
    prompt = tok.encode(pending)
    answer = tok.encode(m.content) + [tok.eos_id]
    ids += prompt + answer
    targets += [0] * len(prompt) + [1] * len(answer)
    ends.append(len(ids))
    pending = ""
  return Encoded(ids, targets, ends)


def truncate(enc: Encoded, max_len: int, policy: str) -> tuple[Encoded | None, str | None]:
  """Fit a conversation into `max_len` tokens. Returns (result, what happened or None)."""
  if len(enc.ids) <= max_len:
    return enc, None
  if policy == "skip":
    return None, "skipped: longer than the row"
  fitting = [e for e in enc.round_ends if e <= max_len]
  if fitting:
    n = fitting[-1]
    return Encoded(enc.ids[:n], enc.targets[:n], fitting), "dropped trailing rounds"
  if sum(enc.targets[:max_len]) == 0:
    return None, "skipped: the first prompt alone fills the row"
  return Encoded(enc.ids[:max_len], enc.targets[:max_len], []), "cut inside the first answer"


def read_conversations(path: str, report: SkipReport) -> Iterator[list[Message]]:
  return (messages for _, messages in located_conversations(path, report))


def located_conversations(path: str, report: SkipReport) -> Iterator[tuple[str, list[Message]]]:
  """(`file:line`, messages) per valid record; a bad one goes to `report`."""
  for where, record in read_jsonl(path, report):
    try:
      yield where, parse_conversation(record)
    except BadRecord as e:
      report.skip(where, str(e))


def sft_settings(template: ChatTemplate, max_len: int, policy: str, dedup: str = "off") -> dict:
  """What besides the inputs and tokenizer shapes a prepared SFT source (see `stale_reason`)."""
  return {"format": "sft", "system": template.system, "max_len": max_len, "truncation_policy": policy,
          "dedup_prompts": dedup}


def prepare_sft_source(name: str, patterns: Sequence[str] | str, out_root: str, tok: Tokenizer,
                       template: ChatTemplate, max_len: int, policy: str = "drop_rounds",
                       dedup: str = "off") -> dict:
  """Tokenize conversations into the prepared layout plus `targets.bin` (uint8 answer mask).

  `dedup` ("near", "exact", "off": `data.dedup_prompts`) drops examples that repeat an earlier
  one, compared on every turn but the system message: document-grounded examples share a long
  document and differ in a short question and answer, and on their questions alone 40 of the
  shipped 410 were near duplicates of distinct ones."""
  files = expand_paths(patterns, f"data.sources.{name}.paths")
  refuse_stale_cleaning(files, f"data.sources.{name}")
  inputs = fingerprint(files)
  report = SkipReport()
  truncations: dict[str, int] = {}
  examples = (pair for path in files for pair in located_conversations(path, report))
  if dedup != "off":  # dedup needs every example at once; otherwise they stream
    examples = list(examples)
    examples = drop_duplicates(examples, [dialogue_text(m) for _, m in examples], [w for w, _ in examples],
                               report, PromptDedupSettings(mode=dedup))
  with atomic_output_dir(os.path.join(out_root, name), overwrite=True) as tmp:
    writer = PreparedWriter(tmp, tok.vocab_size, with_targets=True)
    for _, messages in examples:
      enc, what = truncate(encode_conversation(tok, template, messages), max_len, policy)
      if what:
        truncations[what] = truncations.get(what, 0) + 1
      if enc is not None:
        writer.add(enc.ids, enc.targets)
    return writer.finish(name, tok, inputs, report, truncation=truncations,
                         **sft_settings(template, max_len, policy, dedup))
