"""A synthetic mixed Chinese/English corpus with planted duplicates and junk, built with numpy so
that a million documents take seconds, and the same for the same seed.

Words are drawn from Zipf-like frequencies over synthetic_vocab.py; every planted copy names the
document it copies (`copy_of`) and its kind (`kind`: "zh", "en", "exact", "near_2", "near_5",
"near_10", "junk"), so a run's recall can be read off its output.
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np

from xy_jax.data.clean.synthetic_vocab import EN_WORDS, ZH_PARTICLES, ZH_WORDS

ZH_FOOTER = "\n免责声明：本文仅供参考，不构成投资建议，版权所有，转载请注明出处。"
EN_FOOTER = "\n\nDisclaimer: this article is for information only and is not investment advice."
PII_LINES = ("\n联系人邮箱：{user}@example.com，电话：138{d8}。", "\nContact: {user}@example.org or +1 415-555-{d4}.")
NEAR_EDITS = {"near_2": 0.02, "near_5": 0.05, "near_10": 0.10}
# Shares of a shard's documents; the rest are original documents, 60% Chinese.
PLANTED = {"exact": 0.04, "near_2": 0.015, "near_5": 0.015, "near_10": 0.01, "junk": 0.02}
ZH_SHARE, FOOTER_SHARE, PII_SHARE = 0.6, 0.05, 0.02


def _zipf(n: int, s: float = 0.9, offset: int = 5) -> np.ndarray:
  p = 1.0 / (np.arange(n) + offset) ** s
  return p / p.sum()


def _vocabulary(zh: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(token strings, their probabilities, the punctuation token strings: comma, stop, paragraph)."""
  if zh:
    words = np.array(ZH_WORDS + ZH_PARTICLES, dtype=object)
    p = np.concatenate([0.8 * _zipf(len(ZH_WORDS)), 0.2 * _zipf(len(ZH_PARTICLES), 1.0, 1)])
    return words, p, np.array(["，", "。", "。\n"], dtype=object)
  words = np.array([" " + w for w in EN_WORDS], dtype=object)
  return words, _zipf(len(EN_WORDS)), np.array([",", ".", ".\n\n"], dtype=object)


def texts(rng: np.random.Generator, n: int, zh: bool, median_words: int = 300) -> tuple[list[str], list[np.ndarray]]:
  """`n` documents of Zipf-drawn words, with commas, sentence stops and paragraph breaks; and each
  document's token ids (for word-level edits)."""
  words, p, punct = _vocabulary(zh)
  lengths = np.clip(rng.lognormal(np.log(median_words), 0.5, n), 30, 3000).astype(np.int64)
  ids = rng.choice(len(words), size=int(lengths.sum()), p=p)
  tokens = words[ids]
  # about one token in 8 is followed by punctuation: a comma, a full stop, now and then a new paragraph
  marks = np.flatnonzero(rng.random(len(tokens)) < 1 / 8)
  kind = rng.choice(3, size=len(marks), p=[0.6, 0.34, 0.06])
  tokens[marks] = tokens[marks] + punct[kind]
  ends = np.cumsum(lengths)
  starts = ends - lengths
  stop = "。" if zh else "."
  out = ["".join(tokens[s:e]).strip().rstrip("，,。.\n") + stop for s, e in zip(starts.tolist(), ends.tolist())]
  return out, [ids[s:e] for s, e in zip(starts.tolist(), ends.tolist())]


_HAN_POOL = np.unique(np.frombuffer("".join(ZH_WORDS).encode("utf-32-le"), dtype=np.uint32))


def edit_zh_chars(rng: np.random.Generator, text: str, frac: float) -> str:
  """Substitutes `frac` of the Han characters (at least one) with other Han characters."""
  cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
  han = np.flatnonzero((cps >= 0x4E00) & (cps <= 0x9FFF))
  k = max(1, round(frac * len(han)))
  at = rng.choice(han, size=k, replace=False)
  pick = rng.integers(0, len(_HAN_POOL), size=k)
  pick += _HAN_POOL[pick] == cps[at]  # the same character again would be no edit: take the next one
  cps[at] = _HAN_POOL[pick % len(_HAN_POOL)]
  return cps.tobytes().decode("utf-32-le")


def edit_en_words(rng: np.random.Generator, text: str, frac: float) -> str:
  """Substitutes `frac` of the space-separated words (at least one) with words not in the vocabulary."""
  words = text.split(" ")
  k = max(1, round(frac * len(words)))
  for i in rng.choice(len(words), size=k, replace=False).tolist():
    words[i] = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "zeta")[int(rng.integers(8))]
  return " ".join(words)


def near_copy(rng: np.random.Generator, text: str, frac: float, zh: bool) -> str:
  return edit_zh_chars(rng, text, frac) if zh else edit_en_words(rng, text, frac)


def junk_text(rng: np.random.Generator) -> str:
  """One junk document: symbol noise, repeated navigation lines, digit runs, a stub or a boilerplate bar."""
  which = int(rng.integers(6))
  if which == 0:
    return " ".join(rng.choice(list("▲▼◆●★☆■□$#@%^&*~|"), size=int(rng.integers(30, 200))))
  if which == 1:
    return "\n".join(["点击这里关注我们的公众号获取更多资讯"] * int(rng.integers(4, 20)))
  if which == 2:
    return " ".join(str(x) for x in rng.integers(10**9, 10**10, size=int(rng.integers(8, 60))))
  if which == 3:
    return ("短讯", "Breaking", "更新中")[int(rng.integers(3))]
  if which == 4:
    return "\n".join(["Click here to subscribe to our newsletter today"] * int(rng.integers(4, 20)))
  return " | ".join(["登录", "注册", "分享到", "返回首页", "上一篇", "下一篇", "扫一扫", "关注我们"])


def shard_records(seed: int, shard: int, n: int) -> list[dict]:
  """The `n` records of one shard: originals, planted copies of originals of the same shard, junk."""
  rng = np.random.default_rng([seed, shard])
  counts = {k: int(round(share * n)) for k, share in PLANTED.items()}
  n_orig = n - sum(counts.values())
  n_zh = int(round(ZH_SHARE * n_orig))
  zh, _ = texts(rng, n_zh, True)
  en, _ = texts(rng, n_orig - n_zh, False)
  originals = [(t, True) for t in zh] + [(t, False) for t in en]
  prefix = f"s{shard:05d}-"
  records = []
  extras = rng.random((len(originals), 2))
  for i, ((text, is_zh), (footer, pii)) in enumerate(zip(originals, extras.tolist())):
    if footer < FOOTER_SHARE:
      text += ZH_FOOTER if is_zh else EN_FOOTER
    if pii < PII_SHARE:
      text += PII_LINES[0 if is_zh else 1].format(user=f"user{shard}x{i}", d8=f"{int(rng.integers(10**8)):08d}",
                                                  d4=f"{int(rng.integers(10**4)):04d}")
    records.append({"id": f"{prefix}{i:07d}", "text": text, "kind": "zh" if is_zh else "en"})
  for kind, k in counts.items():
    for _ in range(k):
      if kind == "junk":
        records.append({"id": "", "text": junk_text(rng), "kind": kind})
        continue
      j = int(rng.integers(len(originals)))
      text = records[j]["text"]
      if kind in NEAR_EDITS:
        text = near_copy(rng, text, NEAR_EDITS[kind], originals[j][1])
      records.append({"id": "", "text": text, "kind": kind, "copy_of": records[j]["id"]})
  order = rng.permutation(len(records))
  out = [records[i] for i in order.tolist()]
  for i, r in enumerate(out):
    if not r["id"]:
      r["id"] = f"{prefix}c{i:07d}"
  return out


def write_shard(seed: int, shard: int, n: int, path: str, level: int) -> tuple[int, int]:
  """Writes shard_records(seed, shard, n) to `path` (gzip JSONL, atomically); returns (documents, bytes of JSON text)."""
  lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in shard_records(seed, shard, n)).encode("utf-8")
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as f:
    f.write(lines)
  os.replace(tmp, path)
  return n, len(lines)
