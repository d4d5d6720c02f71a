"""ChatSession: streamed pieces, history, and dropping the oldest turns when the context is full."""

import pytest

from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer
from xy_jax.infer.chat import ChatSession
from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.sharding import LogicalSharding


@pytest.fixture(scope="module")
def generator():
  tok = load_tokenizer(None)
  model = init_model(CausalLM, get_preset("tiny", max_position_embeddings=96), LogicalSharding(), seed=5)
  return Generator(model, tok.eos_id, tok.pad_id), tok


def test_reply_streams_and_records_history(generator):
  gen, tok = generator
  sampling = SamplingConfig(greedy=True, max_new_tokens=12)
  session = ChatSession(gen, tok, sampling)
  pieces = list(session.reply("什么是复利？"))
  answer = "".join(pieces)
  ids = ChatTemplate().encode_prompt(tok, [Message("user", "什么是复利？")])
  expected = gen.generate([ids], sampling)[0].tokens
  assert answer == tok.decode(expected)
  assert len(pieces) > 1  # text arrives token by token, not at the end
  assert session.history == [Message("user", "什么是复利？"), Message("assistant", answer)]
  assert session.last.prompt_tokens == len(ids) and session.last.new_tokens == len(expected)


def test_oldest_turns_are_dropped_to_fit(generator):
  gen, tok = generator
  session = ChatSession(gen, tok, SamplingConfig(greedy=True, max_new_tokens=40))
  for q in ("第一个问题是什么是市盈率", "第二个问题是什么是复利", "第三个问题是什么是汇率"):
    list(session.reply(q))
  assert session.last.prompt_tokens <= 96 - 40
  assert session.last.dropped_turns >= 1
  assert session.history[-2] == Message("user", "第三个问题是什么是汇率")
  with pytest.raises(ValueError, match="the question alone is"):
    list(session.reply("很长的问题" * 40))
