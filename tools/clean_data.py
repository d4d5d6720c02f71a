"""Curate text sources before tokenisation (normalise, language, quality, PII, exact and near dedup).

The program is xy_jax/main/clean_data.py (`python -m xy_jax.main.clean_data`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.clean_data", run_name="__main__")
