"""Generate a continuation with a KV cache; only the generated text goes to stdout.

The program is xy_jax/main/generate.py (`python -m xy_jax.main.generate`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.generate", run_name="__main__")
