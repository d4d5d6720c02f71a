"""A synthetic mixed Chinese/English corpus with planted duplicates and junk for the curation pipeline.

The program is xy_jax/main/make_clean_corpus.py (`python -m xy_jax.main.make_clean_corpus`); this
wrapper keeps the documented command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.make_clean_corpus", run_name="__main__")
