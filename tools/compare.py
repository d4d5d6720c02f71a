"""Win / tie / lose of model A against model B, judged by a reward model, per category.

The program is xy_jax/main/compare.py (`python -m xy_jax.main.compare`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.compare", run_name="__main__")
