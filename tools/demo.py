"""End-to-end demo at tiny scale on CPU: the whole pipeline, run in order.

The program is xy_jax/main/demo.py (`python -m xy_jax.main.demo`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.demo", run_name="__main__")
