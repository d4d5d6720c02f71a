"""SFT rendering: exactly the answers (and their </s>) carry loss; bad records are reported."""

import json

import numpy as np
import pytest

from xy_jax.data.buckets import build_row
from xy_jax.data.prepared import PreparedSource
from xy_jax.data.sft import (BadRecord, encode_conversation, parse_conversation, prepare_sft_source,
                             truncate)
from xy_jax.data.sources import SkipReport
from xy_jax.data.sft import read_conversations
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer

TOK = load_tokenizer(None)
CONV = {"conversations": [
    {"from": "human", "value": "什么是复利？"}, {"from": "assistant", "value": "复利是指利息再生利息。"},
    {"from": "human", "value": "举个例子。"}, {"from": "gpt", "value": "本金1000元，两年后约为1060.90元。"}]}


def _runs(targets):
  """Contiguous runs of target positions."""
  runs, start = [], None
  for i, t in enumerate(list(targets) + [0]):
    if t and start is None:
      start = i
    if not t and start is not None:
      runs.append((start, i))
      start = None
  return runs


def test_only_answers_and_their_eos_carry_loss():
  enc = encode_conversation(TOK, ChatTemplate(), parse_conversation(CONV))
  runs = _runs(enc.targets)
  assert len(runs) == 2
  answers = ["复利是指利息再生利息。", "本金1000元，两年后约为1060.90元。"]
  for (a, b), answer in zip(runs, answers):
    assert enc.ids[b - 1] == TOK.eos_id
    assert TOK.decode(enc.ids[a:b]) == answer  # decode stops at the </s>
  # Everything else is the rendered prompt, exactly as the chat template writes it.
  prompt_ids = [i for i, t in zip(enc.ids, enc.targets) if not t]
  assert prompt_ids[0] == TOK.bos_id
  assert TOK.decode(prompt_ids) == " Human: 什么是复利？ Assistant: Human: 举个例子。 Assistant:"


def test_packed_row_loss_mask_marks_predictions_of_answer_tokens():
  enc = encode_conversation(TOK, ChatTemplate(), parse_conversation(CONV))
  other = encode_conversation(TOK, ChatTemplate(), parse_conversation(
      {"prompt": "你好", "response": "您好！"}))
  row = build_row([np.asarray(enc.ids), np.asarray(other.ids)], 128, TOK.pad_id,
                  [np.asarray(enc.targets), np.asarray(other.targets)])
  predicted = [int(row["tokens"][t + 1]) for t in np.nonzero(row["loss_mask"])[0]]
  expected = [i for i, t in zip(enc.ids, enc.targets) if t] + [i for i, t in zip(other.ids, other.targets) if t]
  assert predicted == expected
  text = TOK.sp.decode([i for i in predicted if i != TOK.eos_id])
  assert text == "复利是指利息再生利息。本金1000元，两年后约为1060.90元。您好！"


def test_system_message_and_prompt_response_form():
  msgs = parse_conversation({"system": "你是金融助手。", "prompt": "你好", "response": "您好！"})
  assert msgs[0] == Message("system", "你是金融助手。")
  enc = encode_conversation(TOK, ChatTemplate(), msgs)
  assert TOK.decode([i for i, t in zip(enc.ids, enc.targets) if not t]) == "你是金融助手。 Human: 你好 Assistant:"


@pytest.mark.parametrize("record,reason", [
    ({"conversations": [{"from": "human", "value": "hi"}]}, "no assistant turn"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "assistant", "value": " "}]},
     "empty assistant answer"),
    ({"prompt": "hi"}, "missing \"prompt\" or \"response\""),
    ({"conversations": [{"from": "robot", "value": "hi"}]}, "unknown role 'robot'"),
    ({"conversations": [{"from": "assistant", "value": "hi"}]}, "turns out of order"),
    ({"text": "plain"}, "no \"conversations\" or \"prompt\"/\"response\" fields"),
])
def test_bad_records_are_named(record, reason):
  with pytest.raises(BadRecord, match=reason):
    parse_conversation(record)


def test_bad_records_are_counted_with_file_and_line(tmp_path):
  path = tmp_path / "sft.jsonl"
  lines = [json.dumps(CONV, ensure_ascii=False), "{oops",
           json.dumps({"conversations": [{"from": "human", "value": "hi"}]}),
           json.dumps({"prompt": "q", "response": ""}),
           json.dumps({"conversations": [{"from": "narrator", "value": "x"}]}),
           json.dumps({"prompt": "q"}), json.dumps({"prompt": "好", "response": "好的"})]
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  report = SkipReport()
  convs = list(read_conversations(str(path), report))
  assert len(convs) == 2 and report.total == 5
  assert f"{path}:2: malformed JSON" in report.examples
  assert f"{path}:3: no assistant turn" in report.examples
  assert f"{path}:5: unknown role 'narrator'" in report.examples
  meta = prepare_sft_source("s", [str(path)], str(tmp_path / "out"), TOK, ChatTemplate(), 128)
  assert meta["n_docs"] == 2 and sum(meta["skipped"].values()) == 5
  src = PreparedSource.open(str(tmp_path / "out"), "s")
  assert src.targets is not None and len(src.targets) == len(src.tokens)


def test_truncation_policies():
  enc = encode_conversation(TOK, ChatTemplate(), parse_conversation(CONV))
  first_round = enc.round_ends[0]
  kept, what = truncate(enc, first_round + 3, "drop_rounds")
  assert what == "dropped trailing rounds" and kept.ids == enc.ids[:first_round]
  assert truncate(enc, first_round + 3, "skip") == (None, "skipped: longer than the row")
  cut, what = truncate(enc, first_round - 2, "drop_rounds")
  assert what == "cut inside the first answer" and len(cut.ids) == first_round - 2
  assert truncate(enc, len(enc.ids), "drop_rounds") == (enc, None)
