"""Preference pairs: both forms, rendering, and bad-record reports."""

import json

from xy_jax.data.preference import pair_batch, read_pairs
from xy_jax.data.sources import SkipReport
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer

TOK = load_tokenizer(None)


def test_pairs_render_with_the_template_and_end_with_eos(tmp_path):
  path = tmp_path / "p.jsonl"
  rows = [{"prompt": "什么是汇率？", "chosen": "汇率是货币的比价。", "rejected": "不知道。"},
          {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "您好"},
                             {"from": "human", "value": "什么是期权？"}],
           "chosen": "期权是一种权利。", "rejected": "随便。"},
          {"prompt": "x", "chosen": "ok"},
          {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}],
           "chosen": "a", "rejected": "b"},
          {"prompt": "长" * 200, "chosen": "a", "rejected": "b"}]
  path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{bad\n",
                  encoding="utf-8")
  report = SkipReport()
  pairs = read_pairs([str(path)], "data.sources.p.paths", TOK, ChatTemplate(), 64, report)
  assert len(pairs) == 2
  prompt = ChatTemplate().encode_prompt(TOK, [Message("user", "什么是汇率？")])
  assert pairs.chosen[0].tolist() == prompt + TOK.encode("汇率是货币的比价。") + [TOK.eos_id]
  rejected = pairs.rejected[1].tolist()
  assert rejected[-1] == TOK.eos_id and rejected.count(TOK.eos_id) == 2  # after each answer
  assert TOK.sp.decode([i for i in rejected if i > 2]).endswith("什么是期权？ Assistant:随便。")
  assert report.counts == {"missing \"chosen\" or \"rejected\" string": 1,
                           "the conversation must end with a user turn": 1,
                           "longer than the 64-token row": 1, "malformed JSON": 1}
  assert f"{path}:6: malformed JSON" in report.examples

  batch = pair_batch(pairs, [1, 0], 64, TOK.pad_id, weights=[1.0, 0.0])
  assert batch["tokens"].shape == (4, 64)
  assert batch["weight"].tolist() == [1, 1, 0, 0]
  assert batch["segment_ids"][0].sum() == len(pairs.chosen[1])


def test_pairs_with_the_same_tokens_on_both_sides_are_skipped_under_their_own_reason(tmp_path):
  path = tmp_path / "p.jsonl"
  rows = [{"prompt": "什么是汇率？", "chosen": "汇率是货币的比价。", "rejected": "汇率是货币的比价。"},
          {"prompt": "什么是期权？", "chosen": "期权是一种权利。", "rejected": "随便。"}]
  path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
  report = SkipReport()
  pairs = read_pairs([str(path)], "data.sources.p.paths", TOK, ChatTemplate(), 64, report)
  assert len(pairs) == 1 and pairs.rejected[0].tolist()[-3:] != pairs.chosen[0].tolist()[-3:]
  assert report.counts == {"chosen and rejected are the same tokens": 1}
  assert report.examples == [f"{path}:1: chosen and rejected are the same tokens"]
