"""Perplexity of a model on a text file.

The program is xy_jax/main/eval_ppl.py (`python -m xy_jax.main.eval_ppl`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.eval_ppl", run_name="__main__")
