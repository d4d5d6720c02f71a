"""Extend a LLaMA-family model's vocabulary with pieces learnt from a corpus (XuanYuan-13B/70B:

The program is xy_jax/main/extend_vocab.py (`python -m xy_jax.main.extend_vocab`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.extend_vocab", run_name="__main__")
