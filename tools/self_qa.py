"""Self-QA: write SFT data from unlabelled documents with a chat model (the XuanYuan recipe).

The program is xy_jax/main/self_qa.py (`python -m xy_jax.main.self_qa`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.self_qa", run_name="__main__")
