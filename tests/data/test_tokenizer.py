"""The sentencepiece wrapper and chat template, checked against transformers' tokenizer."""


import pytest
from transformers import AutoTokenizer

from xy_jax.convert.hf import export_hf
from xy_jax.data.tokenizer import ChatTemplate, Message, Tokenizer, load_tokenizer
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.sharding import LogicalSharding

TEXTS = [
    "市盈率是指股票价格与每股收益的比率。",
    "XuanYuan 轩辕 is a financial LLM; 2024年营业收入为123.45亿元。",
    "The river flows east  toward the sea.\nNew line\tand tab.",
    "生僻字龘和表情😀 fall back to bytes",
    " Human: 介绍下你自己 Assistant:",
]
CONVERSATION = [Message("user", "你好"), Message("assistant", "您好！有什么可以帮您？"),
                Message("user", "什么是复利？")]


@pytest.fixture(scope="module")
def tok():
  return load_tokenizer(None)


@pytest.fixture(scope="module")
def hf_tok(tmp_path_factory, tok):
  out = str(tmp_path_factory.mktemp("hf") / "model")
  model = init_model(CausalLM, get_preset("tiny"), LogicalSharding())
  export_hf(model, get_preset("tiny", pad_token_id=tok.pad_id), out, tokenizer_file=tok.model_file,
            log=lambda *_: None)
  return AutoTokenizer.from_pretrained(out)


def test_special_ids_and_round_trip(tok):
  assert (tok.unk_id, tok.bos_id, tok.eos_id, tok.pad_id) == (0, 1, 2, 3)
  for text in TEXTS:
    ids = tok.encode(text, bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == text
  assert tok.decode(tok.encode("前半", eos=True) + tok.encode("后半")) == "前半"  # stops at EOS


def test_exported_tokenizer_gives_the_same_ids(tok, hf_tok):
  for text in TEXTS:
    assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
    assert hf_tok(text)["input_ids"] == tok.encode(text, bos=True)
  assert hf_tok.pad_token_id == tok.pad_id and hf_tok.eos_token_id == tok.eos_id


def test_chat_template_renders_like_the_model_card(tok, hf_tok):
  t = ChatTemplate()
  # XuanYuan-6B card: seps[0] + "Human: " + q + seps[0] + "Assistant:"; answers end with </s>.
  assert t.render([Message("user", "介绍下你自己")], bos="") == " Human: 介绍下你自己 Assistant:"
  expected = "<s> Human: 你好 Assistant:您好！有什么可以帮您？</s> Human: 什么是复利？ Assistant:"
  assert t.render(CONVERSATION) == expected
  hf_messages = [{"role": m.role, "content": m.content} for m in CONVERSATION]
  assert hf_tok.apply_chat_template(hf_messages, tokenize=False) == expected
  hf_ids = hf_tok.apply_chat_template(hf_messages, tokenize=True)
  hf_ids = hf_ids["input_ids"] if isinstance(hf_ids, dict) or hasattr(hf_ids, "keys") else hf_ids
  assert list(hf_ids) == t.encode_prompt(tok, CONVERSATION)


def test_system_message_goes_first(tok, hf_tok):
  system = "以下是用户和人工智能助手之间的对话。"
  with_system = [Message("system", system)] + CONVERSATION[:1]
  rendered = ChatTemplate().render(with_system)
  assert rendered == f"<s>{system} Human: 你好 Assistant:"
  assert ChatTemplate(system=system).render(CONVERSATION[:1]) == rendered
  hf_messages = [{"role": m.role, "content": m.content} for m in with_system]
  assert hf_tok.apply_chat_template(hf_messages, tokenize=False) == rendered
  with pytest.raises(ValueError, match="role 'system'"):
    ChatTemplate().render(CONVERSATION[:1] + [Message("system", "late")])


def test_tokenizer_without_pad_piece_pads_with_unk(tmp_path):
  import sentencepiece as spm
  from xy_jax.data import synthetic_text
  corpus = tmp_path / "c.txt"
  corpus.write_text("\n".join(synthetic_text.GENERAL_EN * 20), encoding="utf-8")
  spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "nopad"),
                                 vocab_size=60, pad_id=-1, minloglevel=2)
  t = Tokenizer(str(tmp_path / "nopad.model"))
  assert t.pad_id == t.unk_id == 0

