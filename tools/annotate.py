"""Human annotation of model answers (GSB evaluation, preference pairs) over one SQLite database.

The program is xy_jax/main/annotate.py (`python -m xy_jax.main.annotate`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.annotate", run_name="__main__")
