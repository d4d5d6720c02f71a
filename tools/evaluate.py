"""Benchmark accuracy (C-Eval, CMMLU, MMLU, FinanceIQ) of a model, as lm-evaluation-harness scores it.

The program is xy_jax/main/evaluate.py (`python -m xy_jax.main.evaluate`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.evaluate", run_name="__main__")
