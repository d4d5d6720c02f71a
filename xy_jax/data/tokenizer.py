"""SentencePiece tokenizer with BOS/EOS/pad handling and the XuanYuan chat template.

XuanYuan-6B chat format (model card): `" Human: " + q + " Assistant:"`, each answer followed by
`</s>`, rounds concatenated; the 70B models put a system message first. Generation prompts are
rendered to one string and encoded whole (as `transformers` does with the card's prompt); training
examples are encoded segment by segment so the answer tokens can be masked exactly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from xy_jax.errors import ConfigError

HUMAN, ASSISTANT = "Human", "Assistant"

DEFAULT_ASSET = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tokenizer_tiny.model")


@dataclasses.dataclass(frozen=True)
class Message:
  role: str  # "system" | "user" | "assistant"
  content: str


class Tokenizer:
  """Thin wrapper over `sentencepiece.SentencePieceProcessor`."""

  def __init__(self, model_file: str):
    if not os.path.isfile(model_file):
      raise FileNotFoundError(f"{model_file}: tokenizer model not found")
    self.model_file = model_file
    self.sp = spm.SentencePieceProcessor(model_file=model_file)
    self.bos_id = self.sp.bos_id()
    self.eos_id = self.sp.eos_id()
    self.unk_id = self.sp.unk_id()
    # A model trained without a pad piece pads with unk, as LLaMA-family checkpoints do.
    self.pad_id = self.sp.pad_id() if self.sp.pad_id() >= 0 else self.unk_id

  @property
  def vocab_size(self) -> int:
    return self.sp.get_piece_size()

  def piece(self, i: int) -> str:
    return self.sp.id_to_piece(i)

  def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
    ids = self.sp.encode(text)
    return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

  def encode_batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False) -> list[list[int]]:
    out = self.sp.encode(list(texts))
    return [([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else []) for ids in out]

  def decode(self, ids: Iterable[int]) -> str:
    """Decode up to the first EOS; BOS and pad are dropped."""
    keep = []
    for i in ids:
      i = int(i)
      if i == self.eos_id:
        break
      if i in (self.bos_id, self.pad_id) or i < 0:
        continue
      keep.append(i)
    return self.sp.decode(keep)


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
  """The XuanYuan prompt format. `system` is prepended when given (70B style)."""

  system: str | None = None
  sep: str = " "

  def turn_prefix(self, question: str) -> str:
    return f"{self.sep}{HUMAN}: {question}{self.sep}{ASSISTANT}:"

  def _split_system(self, messages: Sequence[Message]) -> tuple[str, list[Message]]:
    rest = list(messages)
    system = self.system or ""
    if rest and rest[0].role == "system":
      system, rest = rest[0].content, rest[1:]
    for m in rest:
      if m.role not in ("user", "assistant"):
        raise ValueError(f"role {m.role!r}: only a first system message, then user/assistant turns")
    return system, rest

  def render(self, messages: Sequence[Message], bos: str = "<s>", eos: str = "</s>") -> str:
    """The whole conversation as one string: what the exported HF chat template renders."""
    system, rest = self._split_system(messages)
    parts = [bos, system]
    for m in rest:
      parts.append(self.turn_prefix(m.content) if m.role == "user" else m.content + eos)
    return "".join(parts)

  def jinja(self) -> str:
    """The same template for `tokenizer_config.json`, so `apply_chat_template` agrees with us."""
    default_system = "" if self.system is None else self.system.replace("'", "\\'")
    sep = self.sep
    return (
        "{{ bos_token }}"
        "{% if messages and messages[0]['role'] == 'system' %}"
        "{% set system = messages[0]['content'] %}{% set loop_messages = messages[1:] %}"
        "{% else %}"
        f"{{% set system = '{default_system}' %}}{{% set loop_messages = messages %}}"
        "{% endif %}"
        "{{ system }}"
        "{% for m in loop_messages %}"
        "{% if m['role'] == 'user' %}"
        f"{{{{ '{sep}{HUMAN}: ' + m['content'] + '{sep}{ASSISTANT}:' }}}}"
        "{% elif m['role'] == 'assistant' %}"
        "{{ m['content'] + eos_token }}"
        "{% endif %}"
        "{% endfor %}")

  def encode_prompt(self, tok: Tokenizer, messages: Sequence[Message]) -> list[int]:
    """BOS + the rendered conversation; text between two `</s>` is encoded whole, as HF does."""
    system, rest = self._split_system(messages)
    ids, pending = [tok.bos_id], system
    for m in rest:
      if m.role == "user":
        pending += self.turn_prefix(m.content)
      else:
        ids += tok.encode(pending + m.content) + [tok.eos_id]
        pending = ""
    return ids + (tok.encode(pending) if pending else [])


def load_tokenizer(path: str | None) -> Tokenizer:
  """A tokenizer from a `.model` file or a directory holding `tokenizer.model`."""
  path = path or DEFAULT_ASSET
  if os.path.isdir(path):
    path = os.path.join(path, "tokenizer.model")
  if not os.path.isfile(path):
    raise ConfigError(f"{path}: tokenizer.model not found")
  return Tokenizer(path)
