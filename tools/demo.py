"""End-to-end demo at tiny scale on CPU: the whole pipeline, run in order.

The program is xy_jax/main/demo.py (`python -m xy_jax.main.demo`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.demo", run_name="__main__")
