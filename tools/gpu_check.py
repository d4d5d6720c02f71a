"""Every GPU check in one command, within a time budget (on the GPU machine: tools/gpu_check.sh).

The program is xy_jax/main/gpu_check.py (`python -m xy_jax.main.gpu_check`); this wrapper keeps the
documented command working."""

import runpy

runpy.run_module("xy_jax.main.gpu_check", run_name="__main__")
