"""The XuanYuan2 bucket table for a data set: rows, tokens, padding per bucket, and measured

The program is xy_jax/main/bucket_stats.py (`python -m xy_jax.main.bucket_stats`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.bucket_stats", run_name="__main__")
