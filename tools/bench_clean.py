"""Curation benchmark: our near-dedup beside stock datatrove MinHash with jieba words; our pipeline per stage.

The program is xy_jax/main/bench_clean.py (`python -m xy_jax.main.bench_clean`); this
wrapper keeps the documented command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.bench_clean", run_name="__main__")
