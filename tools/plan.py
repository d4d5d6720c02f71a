"""Will this config fit a TPU slice, and how fast should it run? (compiled for the slice's topology)

The program is xy_jax/main/plan.py (`python -m xy_jax.main.plan`); this wrapper keeps the documented
command working."""

import os
import runpy

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # compile for TPU; execute nothing (read at jax import)
# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.plan", run_name="__main__")
