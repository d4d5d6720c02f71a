"""Talk to a model in the terminal: multi-turn, XuanYuan template, answers streamed as generated.

The program is xy_jax/main/chat.py (`python -m xy_jax.main.chat`); this wrapper keeps the documented
command working."""

import runpy

# Guarded: multiprocessing workers (spawn) import this file again and must not rerun the program.
if __name__ == "__main__":
  runpy.run_module("xy_jax.main.chat", run_name="__main__")
