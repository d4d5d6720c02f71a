"""Talk to a model in the terminal: multi-turn, XuanYuan template, answers streamed as generated.

The program is xy_jax/main/chat.py (`python -m xy_jax.main.chat`); this wrapper keeps the documented
command working."""

import runpy

runpy.run_module("xy_jax.main.chat", run_name="__main__")
