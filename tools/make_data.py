"""Write the shipped data files from the project's own templates and facts (no downloads).

The program is xy_jax/main/make_data.py (`python -m xy_jax.main.make_data`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.make_data", run_name="__main__")
