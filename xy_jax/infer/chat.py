"""A multi-turn chat session: XuanYuan template, history, streamed text, context trimming."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer
from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig


@dataclasses.dataclass
class TurnStats:
  prompt_tokens: int
  new_tokens: int
  seconds: float
  dropped_turns: int  # oldest exchanges left out to fit the context

  def line(self) -> str:
    rate = self.new_tokens / self.seconds if self.seconds > 0 else 0.0
    dropped = f", {self.dropped_turns} old turn(s) dropped" if self.dropped_turns else ""
    return f"[{self.prompt_tokens} prompt tokens, {self.new_tokens} new, {rate:.1f} tok/s{dropped}]"


def single_turn_generate(generator: Generator, tok: Tokenizer, sampling: SamplingConfig,
                         template: ChatTemplate = ChatTemplate(), seed: int = 0):
  """A batched `prompts -> answers` function: each prompt is one user turn in the chat template
  (cut from the left to fit the context); each call uses the next seed."""
  room = generator.cfg.max_position_embeddings - sampling.max_new_tokens
  state = {"seed": seed}

  def generate(prompts):
    ids = [template.encode_prompt(tok, [Message("user", p)])[-room:] for p in prompts]
    out = generator.generate(ids, sampling, seed=state["seed"])
    state["seed"] += 1
    return [tok.decode(g.tokens) for g in out]

  return generate


class ChatSession:
  """Keeps the conversation; `reply` streams the answer's text and then records it."""

  def __init__(self, generator: Generator, tok: Tokenizer, sampling: SamplingConfig,
               template: ChatTemplate = ChatTemplate(), seed: int = 0):
    self.generator, self.tok, self.sampling, self.template = generator, tok, sampling, template
    self.history: list[Message] = []
    self.seed = seed
    self.last: TurnStats | None = None

  def reset(self) -> None:
    self.history = []

  def _prompt(self, question: str) -> tuple[list[int], int]:
    """Token ids for history + question, dropping the oldest exchanges while it is too long."""
    budget = self.generator.cfg.max_position_embeddings - self.sampling.max_new_tokens
    history = list(self.history)
    dropped = 0
    while True:
      ids = self.template.encode_prompt(self.tok, history + [Message("user", question)])
      if len(ids) <= budget or not history:
        break
      history, dropped = history[2:], dropped + 1
    if len(ids) > budget:
      raise ValueError(f"the question alone is {len(ids)} tokens; at most {budget} fit with "
                       f"max_new_tokens={self.sampling.max_new_tokens}")
    self.history = history
    return ids, dropped

  def reply(self, question: str) -> Iterator[str]:
    """Yield pieces of the answer's text as tokens arrive; the whole answer joins the history."""
    ids, dropped = self._prompt(question)
    start = time.perf_counter()
    new: list[int] = []
    shown = ""
    for t in self.generator.stream(ids, self.sampling, seed=self.seed):
      new.append(t)
      text = self.tok.decode(new)
      if text.endswith("\ufffd"):  # a multi-byte character split across byte-fallback pieces
        continue
      if len(text) > len(shown) and text.startswith(shown):
        yield text[len(shown):]
        shown = text
    text = self.tok.decode(new)
    if text != shown:
      yield text[len(shown):] if text.startswith(shown) else text
    self.seed += 1
    self.history += [Message("user", question), Message("assistant", text)]
    self.last = TurnStats(len(ids), len(new), time.perf_counter() - start, dropped)
