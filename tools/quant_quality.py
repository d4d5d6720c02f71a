"""Perplexity and benchmark accuracy of a model's bfloat16, int8, RTN int4 and GPTQ int4 variants.

The program is xy_jax/main/quant_quality.py (`python -m xy_jax.main.quant_quality`); this
wrapper keeps the documented command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.quant_quality", run_name="__main__")
