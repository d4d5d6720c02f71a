"""The XuanYuan2 bucket table for a data set: rows, tokens, padding per bucket, and measured
training tokens/s per bucket on this machine.

  python tools/bucket_stats.py --config configs/pretrain_tiny.py [--steps 5] [--no_timing]

Timing runs the config's real train step (same model, mesh and tokens per step) on one batch of
each bucket: the first call compiles, the next `--steps` calls are timed.
"""

import time

import jax
from absl import flags
from ml_collections import config_flags

from xy_jax import cli
from xy_jax.data.buckets import bucket_table
import xy_jax.stages  # noqa: F401  registers every stage
from xy_jax.train.setup import setup

config_flags.DEFINE_config_file("config", None, "training config", lock_config=True)
flags.DEFINE_integer("steps", 5, "timed steps per bucket")
flags.DEFINE_bool("timing", True, "measure training tokens/s per bucket")
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  rs = setup(FLAGS.config, log=cli.log)
  sources = rs.task.train_source.planner.sources
  buckets = rs.task.train_source.planner.buckets
  totals = {b: {"rows": 0, "tokens": 0, "capacity": 0, "docs": 0} for b in buckets}
  for src in sources:
    for row in bucket_table(src.packed):
      t = totals[row["bucket"]]
      t["rows"] += row["rows"]
      t["tokens"] += row["tokens"]
      t["capacity"] += row["rows"] * row["bucket"]
      t["docs"] += round(row["docs_per_row"] * row["rows"])

  speed = {}
  if FLAGS.timing:
    planner, source = rs.task.train_source.planner, rs.task.train_source
    state = rs.init_state(cli.log)
    for b in buckets:
      step = next((i for i, plan in enumerate(planner.epoch(0)) if plan.bucket == b), None)
      if step is None:
        continue
      batch = source[step]
      batch.pop("source")
      device_batch = rs.to_device(batch)
      state, m = rs.train_step(state, device_batch)  # compile
      jax.block_until_ready(m)
      start = time.perf_counter()
      for _ in range(FLAGS.steps):
        state, m = rs.train_step(state, device_batch)
      jax.block_until_ready(m)
      elapsed = time.perf_counter() - start
      speed[b] = FLAGS.config.data.tokens_per_step * FLAGS.steps / elapsed

  total_tokens = sum(t["tokens"] for t in totals.values())
  print(f"{'bucket':>8} {'rows':>10} {'tokens':>12} {'share':>7} {'padding':>8} {'docs/row':>9} "
        f"{'train tok/s':>12} {'vs shortest':>11}")
  base = speed.get(buckets[0])
  for b in buckets:
    t = totals[b]
    pad = 1 - t["tokens"] / t["capacity"] if t["capacity"] else 0.0
    share = t["tokens"] / total_tokens if total_tokens else 0.0
    docs = t["docs"] / t["rows"] if t["rows"] else 0.0
    tps = f"{speed[b]:,.0f}" if b in speed else "-"
    ratio = f"{speed[b] / base:.2f}" if b in speed and base else "-"
    print(f"{b:>8} {t['rows']:>10,} {t['tokens']:>12,} {share:>7.1%} {pad:>8.1%} {docs:>9.2f} "
          f"{tps:>12} {ratio:>11}")


if __name__ == "__main__":
  cli.run(main)
