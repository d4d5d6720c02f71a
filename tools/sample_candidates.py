"""Sample candidate answers (one model: pairs of its answers; two: A/B pairs) for people to compare.

The program is xy_jax/main/sample_candidates.py (`python -m xy_jax.main.sample_candidates`); this
wrapper keeps the documented command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.sample_candidates", run_name="__main__")
