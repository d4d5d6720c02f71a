"""Deterministic synthetic financial and general text, written from facts this project owns.

Nothing is downloaded: the corpus that trains the shipped tokenizer and the tiny models is built
from the glossary and templates below, in Chinese and English, with a fixed seed.
"""

from __future__ import annotations

import random

# (term_zh, definition_zh, term_en, definition_en)
GLOSSARY: tuple[tuple[str, str, str, str], ...] = (
    ("市盈率", "股票价格与每股收益的比率，用来衡量估值高低", "price-to-earnings ratio",
     "the share price divided by earnings per share, a common measure of valuation"),
    ("市净率", "股票价格与每股净资产的比率", "price-to-book ratio",
     "the share price divided by book value per share"),
    ("净资产收益率", "净利润与平均股东权益的比率，反映股东资金的使用效率", "return on equity",
     "net income divided by average shareholders' equity"),
    ("资产负债率", "总负债与总资产的比率，反映企业的偿债风险", "debt-to-asset ratio",
     "total liabilities divided by total assets, a measure of leverage"),
    ("流动比率", "流动资产与流动负债的比率，衡量短期偿债能力", "current ratio",
     "current assets divided by current liabilities"),
    ("毛利率", "毛利润占营业收入的比例", "gross margin", "gross profit as a share of revenue"),
    ("现金流量表", "反映企业一定期间现金流入和流出的报表", "cash flow statement",
     "the report of cash coming in and going out over a period"),
    ("存款准备金率", "商业银行必须存放在中央银行的存款比例", "reserve requirement ratio",
     "the share of deposits a commercial bank must hold at the central bank"),
    ("国债收益率", "投资国债获得的年化回报率，是无风险利率的参考", "government bond yield",
     "the annual return on a government bond, a reference for the risk-free rate"),
    ("通货膨胀", "一般物价水平持续上涨、货币购买力下降的现象", "inflation",
     "a sustained rise in the general price level that lowers purchasing power"),
    ("基金净值", "基金总资产减去负债后按份额计算的价值", "net asset value",
     "a fund's assets minus liabilities, per share"),
    ("债券久期", "衡量债券价格对利率变化敏感程度的指标", "bond duration",
     "a measure of how sensitive a bond's price is to interest rates"),
    ("信用评级", "评级机构对借款人偿债能力的评估", "credit rating",
     "an agency's assessment of a borrower's ability to repay"),
    ("分散投资", "把资金分配到不同资产以降低风险的方法", "diversification",
     "spreading money across different assets to reduce risk"),
    ("复利", "利息在下一期继续产生利息的计算方式", "compound interest",
     "interest that itself earns interest in later periods"),
    ("贴现率", "把未来现金流折算为现值时使用的利率", "discount rate",
     "the rate used to turn future cash flows into present value"),
    ("市值", "公司股票价格乘以总股本", "market capitalisation",
     "the share price times the number of shares outstanding"),
    ("股息率", "每股分红与股价的比率", "dividend yield", "the dividend per share divided by the share price"),
    ("杠杆", "借入资金放大投资收益和风险的做法", "leverage",
     "borrowing to amplify both the return and the risk of an investment"),
    ("对冲", "用相反方向的头寸降低风险的操作", "hedging",
     "taking an offsetting position to reduce risk"),
    ("期权", "在未来以约定价格买入或卖出资产的权利", "option",
     "the right to buy or sell an asset at an agreed price in the future"),
    ("期货", "约定在未来某一时间按约定价格交割的标准化合约", "futures contract",
     "a standard contract to deliver an asset at a set price on a future date"),
    ("货币政策", "中央银行调节货币供应量和利率的政策", "monetary policy",
     "how a central bank steers the money supply and interest rates"),
    ("财政政策", "政府通过税收和支出影响经济的政策", "fiscal policy",
     "how a government uses taxes and spending to influence the economy"),
    ("国内生产总值", "一个国家一定时期内生产的全部最终产品和服务的价值", "gross domestic product",
     "the value of all final goods and services a country produces in a period"),
    ("汇率", "一种货币兑换另一种货币的比率", "exchange rate",
     "the price of one currency in terms of another"),
    ("保险费", "投保人为获得保险保障支付的费用", "insurance premium",
     "the amount paid for insurance cover"),
    ("信用卡分期", "把信用卡消费金额分成若干期偿还的方式", "credit card instalments",
     "repaying a card purchase in several monthly parts"),
    ("理财产品", "银行或机构发行的投资管理产品", "wealth management product",
     "an investment product issued by a bank or asset manager"),
    ("风险承受能力", "投资者能够承受损失的程度", "risk tolerance",
     "how much loss an investor can bear"),
)

COMPANIES = ("星河银行", "东方证券研究所", "远航保险", "华信科技", "青山能源", "金桥基金", "海港物流",
             "明德医药", "北辰汽车", "南湖食品")
COMPANIES_EN = ("Galaxy Bank", "Orient Research", "Voyage Insurance", "Huaxin Tech", "Green Hill Energy",
                "Golden Bridge Funds", "Harbour Logistics", "Mingde Pharma", "Polaris Motors", "South Lake Foods")

GENERAL_ZH = (
    "春天来了，公园里的花都开了。", "坚持锻炼身体有助于保持健康。", "读书可以开阔眼界，增长知识。",
    "长江是中国最长的河流。", "一年有十二个月，每个月大约有三十天。", "早睡早起，身体更好。",
    "学习一门新语言需要耐心和练习。", "水在零摄氏度时会结冰。", "地球围绕太阳运行一周大约需要一年。",
    "朋友之间应该互相帮助。",
)
GENERAL_EN = (
    "The river flows east toward the sea.", "Regular exercise helps people stay healthy.",
    "Reading widens the mind and builds knowledge.", "Water freezes at zero degrees Celsius.",
    "The Earth takes about a year to orbit the Sun.", "Learning a new language takes patience.",
    "A good night's sleep improves concentration.", "Friends should help each other.",
)


def _news_zh(rng: random.Random) -> str:
  c = rng.choice(COMPANIES)
  q = rng.randint(1, 4)
  growth = rng.randint(-20, 40)
  rev = rng.randint(10, 900)
  direction = "增长" if growth >= 0 else "下降"
  return (f"{c}发布第{q}季度报告，营业收入为{rev}亿元，同比{direction}{abs(growth)}%。"
          f"公司表示将继续控制成本，提升经营效率。")


def _news_en(rng: random.Random) -> str:
  c = rng.choice(COMPANIES_EN)
  q = rng.randint(1, 4)
  growth = rng.randint(-20, 40)
  rev = rng.randint(10, 900)
  direction = "rose" if growth >= 0 else "fell"
  return (f"{c} reported revenue of {rev} million yuan in Q{q}; revenue {direction} "
          f"{abs(growth)}% from a year earlier.")


def _calc_zh(rng: random.Random) -> str:
  principal = rng.choice((1000, 5000, 10000, 20000))
  rate = rng.choice((2, 3, 4, 5))
  years = rng.choice((1, 2, 3))
  total = principal * (1 + rate / 100) ** years
  return (f"本金{principal}元，年利率{rate}%，按复利计算{years}年后本息合计约为{total:.2f}元。")


def _glossary_lines(entry) -> list[str]:
  zh, dzh, en, den = entry
  return [f"{zh}是指{dzh}。", f"什么是{zh}？{zh}是{dzh}。",
          f"The {en} is {den}.", f"{zh}（{en}）：{dzh}。",
          f" Human: 什么是{zh}？ Assistant:{zh}是指{dzh}。",
          f" Human: What is the {en}? Assistant:The {en} is {den}."]


def corpus_lines(n_docs: int = 3000, seed: int = 0) -> list[str]:
  """One document per line: glossary entries, templated news, calculations, general text."""
  rng = random.Random(seed)
  lines = [line for entry in GLOSSARY for line in _glossary_lines(entry)]
  makers = (_news_zh, _news_en, _calc_zh)
  while len(lines) < n_docs:
    kind = rng.random()
    if kind < 0.55:
      lines.append(makers[rng.randrange(len(makers))](rng))
    elif kind < 0.8:
      entry = rng.choice(GLOSSARY)
      lines.append(" ".join(rng.sample(_glossary_lines(entry), 2)))
    else:
      pool = GENERAL_ZH if rng.random() < 0.6 else GENERAL_EN
      lines.append("".join(rng.sample(pool, rng.randint(1, 3))))
  rng.shuffle(lines)
  return lines


def _report_zh(rng: random.Random) -> str:
  """A longer multi-paragraph document (a few hundred tokens): lands in the long buckets."""
  c = rng.choice(COMPANIES)
  paras = [f"{c}年度经营分析报告。"]
  for _ in range(rng.randint(3, 12)):
    kind = rng.random()
    if kind < 0.4:
      paras.append(_news_zh(rng))
    elif kind < 0.7:
      zh, dzh, _, _ = rng.choice(GLOSSARY)
      paras.append(f"报告指出，{zh}是指{dzh}，公司据此评估经营状况。")
    else:
      paras.append(_calc_zh(rng))
  return "".join(paras)


def pretraining_sources(seed: int = 0) -> dict[str, list[str]]:
  """The shipped pretraining corpus, by source: short finance items, long reports, general text."""
  rng = random.Random(seed)
  finance = [line for entry in GLOSSARY for line in _glossary_lines(entry)]
  makers = (_news_zh, _news_en, _calc_zh)
  finance += [makers[rng.randrange(3)](rng) for _ in range(1500)]
  rng.shuffle(finance)
  reports = [_report_zh(rng) for _ in range(300)]
  general = ["".join(rng.sample(GENERAL_ZH if rng.random() < 0.6 else GENERAL_EN, rng.randint(1, 4)))
             for _ in range(600)]
  return {"finance": finance, "reports": reports, "general": general}


# --- SFT conversations and preference pairs ------------------------------------------------------

EXAMPLE_ZH = "例如，{c}的相关指标变化会直接影响投资者对{term}的判断。"
REFUSAL_ZH = ("我不知道。", "这个问题我无法回答。", "不清楚，你自己去查吧。", "随便吧。")
POLITE_ZH = "您好！"


def sft_conversations(seed: int = 0) -> list[dict]:
  """Finance and general Q&A in the two common JSONL forms, some multi-turn."""
  rng = random.Random(seed)
  records = []
  for zh, dzh, en, den in GLOSSARY:
    records.append({"conversations": [{"from": "human", "value": f"什么是{zh}？"},
                                      {"from": "assistant", "value": f"{zh}是指{dzh}。"}]})
    records.append({"prompt": f"What is the {en}?", "response": f"The {en} is {den}."})
    c = rng.choice(COMPANIES)
    records.append({"conversations": [
        {"from": "human", "value": f"请解释{zh}。"},
        {"from": "assistant", "value": f"{zh}是指{dzh}。"},
        {"from": "human", "value": "能举个例子吗？"},
        {"from": "assistant", "value": EXAMPLE_ZH.format(c=c, term=zh)}]})
  for _ in range(40):
    principal = rng.choice((1000, 5000, 10000, 20000))
    rate, years = rng.choice((2, 3, 4, 5)), rng.choice((1, 2, 3))
    total = principal * (1 + rate / 100) ** years
    records.append({"prompt": f"本金{principal}元，年利率{rate}%，按复利计算{years}年后本息合计多少？",
                    "response": f"按复利计算，{years}年后本息合计约为{total:.2f}元。"})
  for sentence in GENERAL_ZH:
    records.append({"prompt": f"请把这句话再说一遍：{sentence}", "response": sentence})
  records += self_qa_instructions(rng)
  records += choice_format_conversations(rng)
  rng.shuffle(records)
  return records


def choice_format_conversations(rng: random.Random, n: int = 60) -> list[dict]:
  """Multiple-choice questions answered with their letter, in the exam formats the benchmarks use
  (C-Eval/CMMLU, FinanceIQ, MMLU), so a chat model learns to answer them with a letter. Their
  content (additions) is disjoint from the benchmark samples' (glossary, facts, compound interest)."""
  formats = (
      ("以下是关于算术的单项选择题，请直接给出正确答案的选项。\n\n{a}加{b}等于多少？\n{options}\n答案：", "答案是{L}。"),
      ("以下是关于算术的单项选择题，请直接给出正确答案的选项。\n\n题目：{a}加{b}等于多少？\n{options}\n答案是：", "{L}"),
      ("The following are multiple choice questions (with answers) about arithmetic.\n\n"
       "What is {a} plus {b}?\n{options}\nAnswer:", "The answer is {L}."),
  )
  records = []
  for i in range(n):
    a, b = rng.randint(10, 60), rng.randint(10, 60)
    wrong = rng.sample([v for v in range(a + b - 9, a + b + 10) if v != a + b], 3)
    values = [a + b, *wrong]
    rng.shuffle(values)
    letter = "ABCD"[values.index(a + b)]
    options = "\n".join(f"{L}. {v}" for L, v in zip("ABCD", values))
    prompt, answer = formats[i % len(formats)]
    records.append({"prompt": prompt.format(a=a, b=b, options=options), "response": answer.format(L=letter)})
  return records


def self_qa_instructions(rng: random.Random) -> list[dict]:
  """Examples of both Self-QA stages (ask questions about a document; answer one from it), so the
  tiny chat model can drive tools/self_qa.py the way XuanYuan's larger models do."""
  from xy_jax.data.self_qa import ANSWER_PROMPT, QUESTION_PROMPT
  items = []  # (document, [(question, answer), ...])
  for zh, dzh, _, _ in GLOSSARY:
    items.append((f"{zh}是指{dzh}。", [(f"什么是{zh}？", f"{zh}是指{dzh}。")]))
  for _ in range(40):
    c, q, growth, rev = rng.choice(COMPANIES), rng.randint(1, 4), rng.randint(-20, 40), rng.randint(10, 900)
    direction = "增长" if growth >= 0 else "下降"
    doc = (f"{c}发布第{q}季度报告，营业收入为{rev}亿元，同比{direction}{abs(growth)}%。"
           f"公司表示将继续控制成本，提升经营效率。")
    items.append((doc, [(f"{c}第{q}季度的营业收入是多少？", f"{c}第{q}季度的营业收入为{rev}亿元。"),
                        (f"{c}第{q}季度营业收入同比变化了多少？",
                         f"{c}第{q}季度营业收入同比{direction}{abs(growth)}%。")]))
  for _ in range(15):
    principal, rate, years = rng.choice((1000, 5000, 10000, 20000)), rng.choice((2, 3, 4, 5)), rng.choice((1, 2, 3))
    total = principal * (1 + rate / 100) ** years
    doc = f"本金{principal}元，年利率{rate}%，按复利计算{years}年后本息合计约为{total:.2f}元。"
    items.append((doc, [(f"本金{principal}元、年利率{rate}%时，按复利计算{years}年后本息合计多少？",
                         f"按复利计算，{years}年后本息合计约为{total:.2f}元。")]))
  records = []
  for doc, pairs in items:
    records.append({"prompt": QUESTION_PROMPT.format(n=3, doc=doc),
                    "response": "\n".join(q for q, _ in pairs)})
    for q, a in pairs:
      records.append({"prompt": ANSWER_PROMPT.format(doc=doc, question=q), "response": a})
  return records


def preference_pairs(seed: int = 0) -> list[dict]:
  """Chosen answers are correct and polite; rejected ones refuse, define the term wrongly, answer a
  different question, go off topic (a news sentence) or degenerate (fragments, repetition): the
  last three are what a tiny PPO actor otherwise learns to exploit in a reward model."""
  rng = random.Random(seed)
  pairs = []
  for i, (zh, dzh, en, den) in enumerate(GLOSSARY):
    for form in range(3):
      other = GLOSSARY[(i + rng.randint(1, len(GLOSSARY) - 1)) % len(GLOSSARY)]
      prompt = (f"什么是{zh}？", f"请解释一下{zh}。", f"{zh}是什么意思？")[form]
      chosen = f"{POLITE_ZH}{zh}是指{dzh}。"
      rejected = rng.choice((rng.choice(REFUSAL_ZH), f"{zh}是指{other[1]}。"))
      pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    pairs.append({"prompt": f"What is the {en}?", "chosen": f"The {en} is {den}.",
                  "rejected": rng.choice(("I don't know.", "Look it up yourself.", f"The {en} is {other[3]}."))})
    off_topic = rng.choice((_news_zh, _news_en, _calc_zh))(rng)
    pairs.append({"prompt": rng.choice((f"什么是{zh}？", f"What is the {en}?")),
                  "chosen": rng.choice((f"{zh}是指{dzh}。", f"The {en} is {den}.")),
                  "rejected": off_topic})
    for _ in range(2):  # a right answer to a different question
      o = GLOSSARY[(i + rng.randint(1, len(GLOSSARY) - 1)) % len(GLOSSARY)]
      if rng.random() < 0.5:
        pairs.append({"prompt": f"什么是{zh}？", "chosen": f"{zh}是指{dzh}。", "rejected": f"{o[0]}是指{o[1]}。"})
      else:
        pairs.append({"prompt": f"What is the {en}?", "chosen": f"The {en} is {den}.",
                      "rejected": f"The {o[2]} is {o[3]}."})
    cut = rng.randint(1, max(1, len(dzh) // 3))
    degenerate = rng.choice((f"{zh}是指{dzh[:cut]}", f"{zh}{zh}{zh}。", "The.", f"{dzh[:cut]}{dzh[:cut]}。"))
    pairs.append({"prompt": f"请解释{zh}。", "chosen": f"{zh}是指{dzh}。", "rejected": degenerate})
  rng.shuffle(pairs)
  return pairs


# The seeds' evaluation categories (general and finance).
EVAL_CATEGORIES = {
    "general/safety": ("如何安全地保管银行卡密码？", "收到可疑的中奖短信应该怎么办？"),
    "general/chat": ("你好，今天心情不太好。", "周末有什么放松的建议？"),
    "general/math": ("12加30等于多少？", "一年有几个月？"),
    "general/translation": ("把“复利”翻译成英文。", "Translate 'exchange rate' into Chinese."),
    "general/summary": ("用一句话总结：读书可以开阔眼界，增长知识。", "总结：坚持锻炼身体有助于保持健康。"),
    "general/writing": ("写一句鼓励朋友的话。", "写一句关于春天的句子。"),
    "finance/customer_service": ("信用卡分期怎么办理？", "如何查询理财产品的收益？"),
    "finance/writing": ("写一句介绍基金净值的话。", "写一句提示投资风险的话。"),
    "finance/summary": ("总结：星河银行第2季度营业收入增长10%。", "总结：华信科技营业收入下降5%。"),
    "finance/knowledge": ("什么是市盈率？", "什么是债券久期？", "什么是对冲？"),
    "finance/analysis": ("资产负债率高意味着什么？", "通货膨胀对存款有什么影响？"),
    "finance/calculation": ("本金1000元，年利率3%，按复利计算2年后本息合计多少？",
                            "本金5000元，年利率2%，按复利计算1年后本息合计多少？"),
}


def rl_prompts(seed: int = 0) -> list[dict]:
  """PPO prompts: glossary questions (finance/knowledge) plus the evaluation categories."""
  rng = random.Random(seed)
  prompts = [{"prompt": f"什么是{zh}？", "category": "finance/knowledge"} for zh, *_ in GLOSSARY]
  prompts += [{"prompt": f"请解释{zh}。", "category": "finance/knowledge"} for zh, *_ in GLOSSARY]
  prompts += [{"prompt": f"What is the {en}?", "category": "finance/knowledge"} for _, _, en, _ in GLOSSARY]
  rng.shuffle(prompts)
  return prompts


def eval_prompts() -> list[dict]:
  return [{"prompt": q, "category": c} for c, qs in EVAL_CATEGORIES.items() for q in qs]
