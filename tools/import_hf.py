"""Import a Hugging Face LLaMA-style model into an xy_jax (orbax) checkpoint.

The program is xy_jax/main/import_hf.py (`python -m xy_jax.main.import_hf`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.import_hf", run_name="__main__")
