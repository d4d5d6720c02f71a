"""Write a weight-only int8 / int4 copy of a model as an xy_jax checkpoint.

The program is xy_jax/main/quantize.py (`python -m xy_jax.main.quantize`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.quantize", run_name="__main__")
