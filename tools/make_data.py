"""Write the shipped data files from the project's own templates and facts (no downloads).

The program is xy_jax/main/make_data.py (`python -m xy_jax.main.make_data`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.make_data", run_name="__main__")
