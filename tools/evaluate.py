"""Benchmark accuracy (C-Eval, CMMLU, MMLU, FinanceIQ) of a model, as lm-evaluation-harness scores it.

The program is xy_jax/main/evaluate.py (`python -m xy_jax.main.evaluate`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.evaluate", run_name="__main__")
