"""Tokenize text sources once into memory-mapped shards for training.

The program is xy_jax/main/prepare_data.py (`python -m xy_jax.main.prepare_data`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.prepare_data", run_name="__main__")
