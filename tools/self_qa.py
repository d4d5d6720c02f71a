"""Self-QA: write SFT data from unlabelled documents with a chat model (the XuanYuan recipe).

The program is xy_jax/main/self_qa.py (`python -m xy_jax.main.self_qa`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.self_qa", run_name="__main__")
