"""Side-by-side speed: our jitted train step and KV-cache generation against Hugging Face

The program is xy_jax/main/bench.py (`python -m xy_jax.main.bench`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.bench", run_name="__main__")
