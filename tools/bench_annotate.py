"""Load benchmark of the annotation server: concurrent raters voting over loopback.

The program is xy_jax/main/bench_annotate.py (`python -m xy_jax.main.bench_annotate`); this
wrapper keeps the documented command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.bench_annotate", run_name="__main__")
