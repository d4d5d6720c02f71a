"""Side-by-side speed: our jitted train step and KV-cache generation against Hugging Face

The program is xy_jax/main/bench.py (`python -m xy_jax.main.bench`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.bench", run_name="__main__")
