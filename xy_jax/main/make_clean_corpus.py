"""A synthetic corpus for the curation pipeline: mixed Chinese/English documents with planted exact
and near duplicates, boilerplate footers, PII and junk, as gzip JSONL shards.

  python tools/make_clean_corpus.py --docs 1000000 --out /tmp/corpus   # about 1.9 GB of JSON text

The same --seed gives the same shards. Each record is {"id", "text", "kind"} and, for a planted
copy, "copy_of" (the id of the document it copies); see xy_jax/data/clean/synthetic.py.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time

from xy_jax.data.clean.synthetic import write_shard


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="make_clean_corpus", description=__doc__.split("\n\n")[0])
  p.add_argument("--docs", type=int, required=True, help="documents in all")
  p.add_argument("--out", required=True, help="output directory (part-NNNNN.jsonl.gz)")
  p.add_argument("--shards", type=int, default=0, help="files (default: one per 20,000 documents)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
  p.add_argument("--level", type=int, default=1, help="gzip compression level")
  return p


def main(argv=None) -> int:
  args = parser().parse_args(argv)
  if args.docs < 1:
    print("make_clean_corpus: --docs must be at least 1", file=sys.stderr)
    return 2
  shards = args.shards or max(1, -(-args.docs // 20_000))
  sizes = [args.docs // shards + (i < args.docs % shards) for i in range(shards)]
  os.makedirs(args.out, exist_ok=True)
  start = time.perf_counter()
  docs = nbytes = 0
  with concurrent.futures.ProcessPoolExecutor(max(1, args.workers)) as pool:
    jobs = [pool.submit(write_shard, args.seed, i, n, os.path.join(args.out, f"part-{i:05d}.jsonl.gz"), args.level)
            for i, n in enumerate(sizes)]
    for job in jobs:
      n, b = job.result()
      docs, nbytes = docs + n, nbytes + b
  print(f"{docs} documents, {nbytes / 1e9:.2f} GB of JSON text in {shards} shards -> {args.out} "
        f"({time.perf_counter() - start:.1f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
