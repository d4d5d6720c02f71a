"""Prompt dedup (issue 22, item 4): exact and near duplicates of short Chinese and English prompts go,
distinct ones stay (numbers always tell prompts apart), in SFT preparation and in PPO's prompts."""

import json
import random

import pytest

from xy_jax.data.clean.prompts import (EXACT, NEAR, PromptDedupSettings, canonical, char_shingles, find_duplicates,
                                       jaccard)
from xy_jax.data.prepared import PreparedSource
from xy_jax.data.sft import prepare_sft_source
from xy_jax.data.sources import SkipReport
from xy_jax.data.tokenizer import ChatTemplate, load_tokenizer
from xy_jax.errors import ConfigError
from xy_jax.rl.prompts import drop_duplicate_prompts, read_prompts

TOK = load_tokenizer(None)
KEPT = ["什么是国债收益率？", "What is the discount rate?", "请解释期权。", "请解释期货。", "什么是市盈率？",
        "什么是市净率？", "000001的股价是多少？", "600519的股价是多少？", "2022年营收增长了多少？",
        "2023年营收增长了多少？", "What is the net asset value?", "Explain compound interest in simple terms."]
COPIES = {  # planted copy -> (the kept prompt it repeats, kind)
    "什么是国债收益率?": ("什么是国债收益率？", EXACT),  # half-width punctuation
    "什么是 国债收益率": ("什么是国债收益率？", EXACT),
    "ＷＨＡＴ ＩＳ ＴＨＥ ＤＩＳＣＯＵＮＴ ＲＡＴＥ？": ("What is the discount rate?", EXACT),  # full width, case
    "什么是国债收益率呢？": ("什么是国债收益率？", NEAR),
    "What's the discount rate?": ("What is the discount rate?", NEAR),
    "what is the discount rate, please?": ("What is the discount rate?", NEAR),
    "What is the net asset value (NAV)?": ("What is the net asset value?", NEAR),
    "Explain compound interest in simple words.": ("Explain compound interest in simple terms.", NEAR),
}


def test_planted_exact_and_near_copies_go_and_distinct_prompts_stay():
  texts = KEPT + list(COPIES)
  dups = find_duplicates(texts)
  found = {texts[d.index]: (texts[d.kept], d.kind) for d in dups}
  assert found == COPIES
  assert all(d.similarity >= 0.7 for d in dups)


def test_numbers_tell_prompts_apart_even_when_every_3gram_is_shared():
  a, b = "本金1000元，年利率4%，按复利计算3年后本息合计多少？", "本金10000元，年利率4%，按复利计算3年后本息合计多少？"
  assert jaccard(char_shingles(canonical(a), 3), char_shingles(canonical(b), 3)) == 1.0
  assert find_duplicates([a, b]) == []
  assert [d.kind for d in find_duplicates([a, a.replace("？", "?")])] == [EXACT]


def test_lsh_finds_every_pair_above_the_threshold_and_merges_none_below():
  rng = random.Random(0)
  chars = "市场投资者银行利率公司股票债券基金经济增长政策央行监管风险收益资本企业融资信贷通胀消费出口汇率期货保险证券"
  bases = ["请问" + "".join(rng.choice(chars) for _ in range(rng.randint(8, 20))) + "是什么？" for _ in range(150)]
  copies = []
  for base in bases[:100]:
    i = rng.randrange(2, len(base) - 4)
    copies.append(base[:i] + rng.choice(chars) + base[i + 1:])  # one character substituted
  texts = bases + copies
  grams = [char_shingles(canonical(t), 3) for t in texts]
  above = {150 + k for k in range(100) if jaccard(grams[k], grams[150 + k]) >= 0.7}
  assert 30 <= len(above) <= 70  # copies on both sides of the threshold
  assert {d.index: d.kept for d in find_duplicates(texts)} == {j: j - 150 for j in above}


def test_exact_mode_keeps_near_copies_and_a_bad_mode_is_one_line():
  assert [texts for texts in find_duplicates(["什么是国债收益率？", "什么是国债收益率呢？"],
                                             PromptDedupSettings(mode="exact"))] == []
  with pytest.raises(ConfigError, match=r"^data.dedup_prompts='fuzzy' is not one of"):
    find_duplicates(["a"], PromptDedupSettings(mode="fuzzy"))


def _doc_question(company, question, answer):
  return {"prompt": f"请根据文档回答问题。\n文档：{company}发布第2季度报告，营业收入为421亿元，同比下降20%。公司表示将继续控制成本，"
                    f"提升经营效率。\n问题：{company}第2季度{question}", "response": answer}


def test_sft_preparation_drops_repeated_examples_and_reports_them(tmp_path):
  records = [
      {"prompt": "什么是市盈率？", "response": "市盈率是股价与每股收益的比值。", "id": 1},
      {"conversations": [{"from": "human", "value": "什么是市盈率?"},
                         {"from": "gpt", "value": "市盈率是股价与每股收益的比值。"}]},   # exact copy, other form
      {"prompt": "什么是市盈率呢？", "response": "市盈率是股价与每股收益的比值。"},          # near copy
      {"prompt": "什么是市盈率？", "response": "市盈率等于股价除以每股收益。"},              # another answer: kept
      _doc_question("星河银行", "的营业收入是多少？", "星河银行第2季度的营业收入为421亿元。"),
      _doc_question("星河银行", "营业收入同比变化了多少？", "同比下降20%。"),              # same document: kept
  ]
  path = tmp_path / "sft.jsonl"
  path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
  meta = prepare_sft_source("s", [str(path)], str(tmp_path / "out"), TOK, ChatTemplate(), 256, dedup="near")
  assert meta["n_docs"] == 4 and meta["dedup_prompts"] == "near"
  assert meta["skipped"] == {EXACT: 1, NEAR: 1}
  assert f"{path}:2 (of {path}:1): {EXACT}" in meta["skipped_examples"]
  assert f"{path}:3 (of {path}:1): {NEAR}" in meta["skipped_examples"]
  off = prepare_sft_source("s", [str(path)], str(tmp_path / "off"), TOK, ChatTemplate(), 256)
  assert off["n_docs"] == 6 and PreparedSource.open(str(tmp_path / "off"), "s").num_docs == 6


def test_ppo_prompts_lose_duplicates_across_files(tmp_path):
  (tmp_path / "a.jsonl").write_text(
      json.dumps({"prompt": "什么是对冲？", "category": "finance"}, ensure_ascii=False) + "\n"
      + json.dumps({"prompt": "What is hedging in a futures market?"}) + "\n", encoding="utf-8")
  (tmp_path / "b.jsonl").write_text(
      json.dumps({"conversations": [{"from": "human", "value": "什么是对冲?"}]}, ensure_ascii=False) + "\n"
      + json.dumps({"prompt": "What is hedging in the futures market?"}) + "\n"
      + json.dumps({"prompt": "What is leverage?"}) + "\n", encoding="utf-8")
  report = SkipReport()
  prompts = read_prompts([str(tmp_path)], "data.sources.p.paths", TOK, ChatTemplate(), 64, report)
  kept = drop_duplicate_prompts(prompts, report, "near")
  assert [p.text for p in kept] == ["什么是对冲？", "What is hedging in a futures market?", "What is leverage?"]
  assert kept[0].category == "finance"
  assert report.examples == [f"{tmp_path}/b.jsonl:1 (of {tmp_path}/a.jsonl:1): {EXACT}",
                             f"{tmp_path}/b.jsonl:2 (of {tmp_path}/a.jsonl:2): {NEAR}"]
  assert len(drop_duplicate_prompts(prompts, SkipReport(), "off")) == 5


def test_the_config_field_is_checked():
  from tests.train.test_config import ROOT, load
  from xy_jax.config import validate
  cfg = load(f"{ROOT}/configs/sft_tiny.py")
  assert cfg.data.dedup_prompts == "near"
  cfg.data.dedup_prompts = "fuzzy"
  with pytest.raises(ConfigError, match=r"^data.dedup_prompts: 'fuzzy' is not 'near', 'exact' or 'off'$"):
    validate(cfg)


def test_signatures_are_datatroves(monkeypatch):
  from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
  from xy_jax.data.clean import prompts
  from xy_jax.data.clean.prompts import char_signer, minhash_signatures
  monkeypatch.setattr(prompts, "SIGNATURE_CHUNK", 5)  # several batches
  settings = PromptDedupSettings()
  canons = [canonical(t) for t in KEPT + list(COPIES) + ["", "a"]]
  signer = char_signer(settings)
  ours = minhash_signatures(canons, settings)
  for canon, row in zip(canons, ours):
    # datatrove's own get_signature on the same n-gram hashes, not a compiled or copied one
    bands = MinhashDedupSignature.get_signature(signer, signer.get_shingles(canon))
    assert [v for band in bands for v in band] == row.tolist()
