"""Export an xy_jax checkpoint to a Hugging Face directory (LlamaForCausalLM, or

The program is xy_jax/main/export_hf.py (`python -m xy_jax.main.export_hf`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.export_hf", run_name="__main__")
