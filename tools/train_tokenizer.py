"""Train the small sentencepiece tokenizer the tests and demo use, from the shipped synthetic text.

The program is xy_jax/main/train_tokenizer.py (`python -m xy_jax.main.train_tokenizer`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.train_tokenizer", run_name="__main__")
