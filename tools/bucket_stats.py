"""The XuanYuan2 bucket table for a data set: rows, tokens, padding per bucket, and measured

The program is xy_jax/main/bucket_stats.py (`python -m xy_jax.main.bucket_stats`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.bucket_stats", run_name="__main__")
