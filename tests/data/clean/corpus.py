"""A planted-duplicate corpus built in the test: clean Chinese and English documents, exact and near
copies at 2/5/10/20% edits, documents sharing only a boilerplate footer, and junk."""

import random

ZH_WORDS = ("市场 投资者 银行 利率 公司 股票 债券 基金 经济 增长 政策 央行 监管 风险 收益 资本 企业 "
            "融资 信贷 通胀 消费 出口 汇率 期货 保险 证券 季度 业绩 利润 营收 资产 负债 流动性 估值 "
            "上涨 下跌 稳定 改革 发展 数据 显示 分析 预计 同比 环比 提高 降低 支持 推动 加强 完善").split()
ZH_CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研"
EN_WORDS = ("market investors bank interest rate company shares bonds fund economy growth policy central "
            "regulator risk returns capital firms credit inflation consumer exports currency futures "
            "insurance quarter earnings profit revenue assets liabilities liquidity valuation rose fell "
            "stable reform data showed analysts expected annual increase lower support boost strengthen "
            "the of and to in a for on with said that as by from its at this year").split()
ZH_FOOTER = "免责声明：本文仅供参考，不构成投资建议，版权所有，转载请注明出处。"
EN_FOOTER = "Disclaimer: this article is for information only and is not investment advice. All rights reserved."


def zh_doc(rng: random.Random, n_sentences: int = 8) -> str:
  sentences = []
  for _ in range(n_sentences):
    sentences.append("".join(rng.choice(ZH_WORDS) for _ in range(rng.randint(6, 12))) + rng.choice("，。；") )
  return "".join(sentences)[:-1] + "。"


def en_doc(rng: random.Random, n_sentences: int = 6) -> str:
  out = []
  for _ in range(n_sentences):
    words = [rng.choice(EN_WORDS) for _ in range(rng.randint(10, 16))]
    out.append(" ".join(words).capitalize() + ".")
  return " ".join(out)


def edit_chars(rng: random.Random, text: str, frac: float) -> str:
  """Substitutes `frac` of the Chinese characters with other ones."""
  chars = list(text)
  positions = [i for i, c in enumerate(chars) if "\u4e00" <= c <= "\u9fff"]
  for i in rng.sample(positions, max(1, round(frac * len(positions)))):
    chars[i] = rng.choice(ZH_CHARS)
  return "".join(chars)


def edit_words(rng: random.Random, text: str, frac: float) -> str:
  words = text.split(" ")
  for i in rng.sample(range(len(words)), max(1, round(frac * len(words)))):
    words[i] = rng.choice(("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "zeta"))
  return " ".join(words)


def junk(rng: random.Random) -> list[str]:
  return ["$$$ ### @@@ %%% ^^^ &&& *** !!! ~~~ |||",
          "\n".join(["点击这里关注我们的公众号获取更多资讯"] * 6),
          "1234567890 9876543210 5555555555 0000000000 1111111111 2222222222 3333333333",
          "短文本",
          "\n".join(["Click here to subscribe to our newsletter today now"] * 5),
          "登录 | 注册 | 分享到 | 返回首页 | 上一篇 | 下一篇 | 扫一扫 | 关注我们",
          " ".join(rng.choice("▲▼◆●★☆■□") for _ in range(60))]
