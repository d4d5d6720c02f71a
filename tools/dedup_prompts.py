"""Drop exact and near-duplicate prompts from PPO prompt files or SFT files.

The program is xy_jax/main/dedup_prompts.py (`python -m xy_jax.main.dedup_prompts`); this wrapper keeps the documented
command working."""

import runpy

if __name__ == "__main__":
  runpy.run_module("xy_jax.main.dedup_prompts", run_name="__main__")
