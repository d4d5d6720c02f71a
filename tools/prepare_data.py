"""Tokenize text sources once into memory-mapped shards for training.

The program is xy_jax/main/prepare_data.py (`python -m xy_jax.main.prepare_data`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.prepare_data", run_name="__main__")
