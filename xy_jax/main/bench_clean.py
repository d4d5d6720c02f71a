"""Curation benchmark: our near-dedup (CJK character n-gram shingles) beside stock datatrove MinHash
with jieba words (`zho_Hani`), on one generated Chinese corpus with near copies planted at 2% and
5% character edits; then our whole pipeline on a mixed Chinese/English corpus, docs/s per stage.

  python tools/bench_clean.py [--docs 2000] [--pairs 100] [--pipeline_docs 20000] [--json OUT.json]

Both dedups run their signature step in this process (one core: docs/s is docs per CPU second)
and datatrove's own bucket and cluster stages after it, with the same 5-grams, 14 bands x 8 rows.
Stock datatrove needs spaCy and jieba for `zho_Hani` (pip install spacy jieba).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import xxhash
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from loguru import logger

from xy_jax.data.clean.dedup_bench import planted_chinese, run_dedup
from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.run import clean
from xy_jax.data.clean.shingles import MixedScriptMinhashSignature, detection_probability
from xy_jax.data.clean.synthetic import write_shard


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="bench_clean", description=__doc__.split("\n\n")[0])
  p.add_argument("--docs", type=int, default=2000, help="Chinese originals of the dedup comparison")
  p.add_argument("--pairs", type=int, default=100, help="near copies planted per edit rate (2%%, 5%%)")
  p.add_argument("--pipeline_docs", type=int, default=20000, help="mixed documents through the whole "
                                                                   "pipeline (0: skip)")
  p.add_argument("--workers", type=int, default=1, help="tasks of the whole-pipeline run")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--workdir", default=None, help="keep the files here (default: a temporary directory)")
  p.add_argument("--json", default=None, help="also write the figures to this file")
  return p


def compare_dedup(args, workdir: str) -> dict:
  config = MinhashConfig()
  corpus = planted_chinese(args.seed, args.docs, args.pairs)
  ours = run_dedup(MixedScriptMinhashSignature(os.path.join(workdir, "ours", "sigs"), config), corpus,
                   os.path.join(workdir, "ours"), config)
  try:
    stock_step = MinhashDedupSignature(os.path.join(workdir, "datatrove", "sigs"), config, language="zho_Hani")
    # datatrove 0.10.1 hands its xxhash a str, which xxhash refuses ("Strings must be encoded before
    # hashing"): the stock step is given the UTF-8 bytes, as our step hashes them.
    stock_step._hash_func = lambda shingle: xxhash.xxh64_intdigest(shingle.encode("utf-8"))
    stock_step.get_shingles("市场")
  except ImportError as e:
    raise SystemExit(f"bench_clean: stock datatrove with jieba words needs its tokenizer ({e})")
  stock = run_dedup(stock_step, corpus, os.path.join(workdir, "datatrove"), config)
  rows = [("docs/s per core (signatures)", f"{ours.docs_per_s:.0f}", f"{stock.docs_per_s:.0f}",
           f"{ours.docs_per_s / stock.docs_per_s:.1f}x")]
  for rate in corpus.pairs:
    n = len(corpus.pairs[rate])
    rows.append((f"recall at {rate:.0%} edits", f"{ours.found[rate]}/{n} = {ours.recall[rate]:.2f}",
                 f"{stock.found[rate]}/{n} = {stock.recall[rate]:.2f}", ""))
  rows.append(("false-positive docs", str(ours.false_positive_docs), str(stock.false_positive_docs), ""))
  rows.append(("CPU s, signatures+buckets+clusters", f"{ours.total_seconds:.1f}", f"{stock.total_seconds:.1f}", ""))
  print(f"near-dedup on {len(corpus.docs)} Chinese docs ({args.docs} originals, {args.pairs} near copies per rate), "
        f"5-grams, 14 bands x 8 rows (P(found) at Jaccard 0.8: {detection_probability(0.8, 14, 8):.2f})")
  print(f"{'':38s} {'ours (CJK char 5-grams)':>26s} {'datatrove + jieba words':>26s} {'ratio':>7s}")
  for name, a, b, r in rows:
    print(f"{name:38s} {a:>26s} {b:>26s} {r:>7s}")
  return {"docs": len(corpus.docs), "pairs_per_rate": args.pairs,
          "ours": {"docs_per_s": ours.docs_per_s, "recall": ours.recall, "false_positive_docs": ours.false_positive_docs},
          "datatrove_jieba": {"docs_per_s": stock.docs_per_s, "recall": stock.recall,
                              "false_positive_docs": stock.false_positive_docs},
          "speed_ratio": ours.docs_per_s / stock.docs_per_s}


def whole_pipeline(args, workdir: str) -> dict:
  src = os.path.join(workdir, "mixed")
  os.makedirs(src, exist_ok=True)
  shards = max(args.workers, 1)
  for i in range(shards):
    write_shard(args.seed, i, args.pipeline_docs // shards + (i < args.pipeline_docs % shards),
                os.path.join(src, f"part-{i:05d}.jsonl.gz"), 1)
  start = time.perf_counter()
  report = clean([src], os.path.join(workdir, "clean_out"), CleanSettings(workers=args.workers))
  wall = time.perf_counter() - start
  print(f"\nwhole pipeline on {args.pipeline_docs} mixed Chinese/English docs, {args.workers} task(s): "
        f"{wall:.1f} s wall, {report['documents_out']} docs out")
  print(f"{'step':14s} {'docs in':>9s} {'docs out':>9s} {'CPU s':>8s} {'docs/s per core':>16s}")
  for key, step in report["steps"].items():
    rate = f"{step['docs_per_s']:.0f}" if step["docs_per_s"] else "-"
    print(f"{key:14s} {step['docs_in']:9d} {step['docs_out']:9d} {step['seconds']:8.1f} {rate:>16s}")
  stages = report.get("stage_wall_seconds", {})
  if stages:
    print(f"{'stage':20s} {'wall s':>8s}")
    for name, seconds in stages.items():
      print(f"{name:20s} {seconds:8.1f}")
  return {"docs": args.pipeline_docs, "wall_s": wall, "steps": {k: s["docs_per_s"] for k, s in report["steps"].items()},
          "stages_wall_s": stages}


def main(argv=None) -> int:
  args = parser().parse_args(argv)
  logger.remove()  # datatrove logs every stage of every task at INFO
  logger.add(sys.stderr, level="WARNING")
  if args.docs < 1 or args.pairs < 1 or 2 * args.pairs > args.docs:
    print("bench_clean: --docs and --pairs must be at least 1 and 2 x --pairs at most --docs", file=sys.stderr)
    return 2
  with tempfile.TemporaryDirectory() as tmp:
    workdir = args.workdir or tmp
    figures = {"dedup": compare_dedup(args, workdir)}
    if args.pipeline_docs > 0:
      figures["pipeline"] = whole_pipeline(args, workdir)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(figures, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
