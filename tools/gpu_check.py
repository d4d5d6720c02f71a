"""Every GPU check in one command, within a time budget (on the GPU machine: tools/gpu_check.sh).

The program is xy_jax/main/gpu_check.py (`python -m xy_jax.main.gpu_check`); this wrapper keeps the
documented command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.gpu_check", run_name="__main__")
