"""Self-QA: prompts carry the document, filters drop what they should, records keep provenance."""

import json

from xy_jax.data.self_qa import (ANSWER_PROMPT, QUESTION_PROMPT, SelfQAReport, grounded, self_qa,
                                 split_questions)
from xy_jax.data.sft import parse_conversation

DOCS = [("docs.txt:1", "市盈率是股价与每股收益的比值。"), ("docs.txt:2", "复利是指利息继续产生利息。")]

QUESTIONS = {
    DOCS[0][1]: "1. 什么是市盈率？\n2、市盈率是股价与什么的比值？\n\n- 什么是市盈率",  # third: duplicate of the first
    DOCS[1][1]: "什么是复利？\n复利的定义\n根据文档，复利有什么特点？\n复利是指什么？\n复利第3年是多少？",
    # second: not a question; fourth: answered off the document; fifth: a number not in it
}
ANSWERS = {
    "什么是市盈率？": "市盈率是股价与每股收益的比值。",
    "市盈率是股价与什么的比值？": "",  # empty
    "什么是复利？": "复利是指利息在下一期继续产生利息。",
    "根据文档，复利有什么特点？": "文档中说复利会让利息继续产生利息。",  # refers to the document
    "复利是指什么？": "两者都是常见的投资分析工具。",
    "复利第3年是多少？": "复利是指利息继续产生利息。",
}


def fake_generate(calls):
  def generate(prompts):
    calls.append(list(prompts))
    out = []
    for p in prompts:
      if p.startswith(QUESTION_PROMPT[:10]):
        out.append(next(v for doc, v in QUESTIONS.items() if doc in p))
      else:
        out.append(next(a for q, a in ANSWERS.items() if p.endswith("问题：" + q)))
    return out
  return generate


def test_filters_and_provenance():
  calls, report = [], SelfQAReport()
  records = list(self_qa(DOCS, fake_generate(calls), questions_per_doc=5, report=report,
                         provenance={"model": "m", "seed": 0}))
  assert [r["conversations"][0]["value"] for r in records] == ["什么是市盈率？", "什么是复利？"]
  assert records[0]["source"] == {"location": "docs.txt:1", "document": DOCS[0][1]}
  assert records[1]["generator"] == {"model": "m", "seed": 0, "method": "self-qa"}
  assert report.documents == 2 and report.questions == 8 and report.kept == 2
  assert report.dropped == {"duplicate question": 1, "answer empty or too short": 1,
                            "not a question": 1, "answer refers to the document": 1,
                            "answer not grounded in the document": 1,
                            "question not grounded in the document": 1}
  # Question prompts carry the document; answer prompts carry the document and the question.
  assert calls[0][0] == QUESTION_PROMPT.format(n=5, doc=DOCS[0][1])
  assert ANSWER_PROMPT.format(doc=DOCS[1][1], question="什么是复利？") in calls[1]
  for r in records:  # readable by the SFT stage
    msgs = parse_conversation(json.loads(json.dumps(r, ensure_ascii=False)))
    assert [m.role for m in msgs] == ["user", "assistant"]


def test_grounding():
  doc = "青山能源第2季度营业收入为277亿元，同比增长31%。"
  assert grounded("青山能源第2季度的营业收入为277亿元。", doc, 0.5)
  assert not grounded("青山能源第1季度的营业收入为277亿元。", doc, 0.5)  # 1 is not in the document
  assert not grounded("华信科技的利润很高。", doc, 0.5)
  assert grounded("青山能源第2季度营业收入同比变化了多少？", doc, 0.6)
  assert not grounded("北辰汽车第2季度营业收入同比变化了多少？", doc, 0.6)  # another company


def test_split_questions_strips_numbering():
  assert split_questions("1) 什么是A？\nQ2: 什么是B？\n问题3：什么是C？\n  \n", 5) == [
      "什么是A？", "什么是B？", "什么是C？"]
  assert split_questions("a?\nb?\nc?", 2) == ["a?", "b?"]
