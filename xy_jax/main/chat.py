"""Talk to a model in the terminal: multi-turn, XuanYuan template, answers streamed as generated.

  python tools/chat.py --hf DIR | --checkpoint CKPT [--quant int8|int4 [--group_size 128]]
                       [--system TEXT] [--temperature 0.7 --top_p 0.95 --max_new_tokens 256 | --greedy]

Defaults are the model card's sampling settings. Commands: /reset forgets the conversation,
/exit (or Ctrl-D) quits; Ctrl-C stops the answer being written. A line that is not UTF-8 is
refused with one line and the conversation goes on. A quantised checkpoint (tools/quantize.py) loads as is; --quant
quantises a float model on the fly. Per-turn token counts and speed go to stderr.
"""

import importlib
import sys

from absl import flags

from xy_jax import cli
from xy_jax.data.tokenizer import ChatTemplate, load_tokenizer
from xy_jax.infer.chat import ChatSession
from xy_jax.infer.generate import Generator

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_enum("quant", None, ["int8", "int4"], "quantise a float model's weights on load")
flags.DEFINE_integer("group_size", 128, "int4 group size (with --quant int4)")
flags.DEFINE_string("system", None, "system message placed before the conversation")
cli.define_sampling_flags()  # the seed is the first turn's; each turn adds one
flags.DEFINE_enum("dtype", "bfloat16", ["float32", "bfloat16"], "compute dtype")
flags.DEFINE_string("tokenizer", None, "tokenizer.model (default: the model's)")
FLAGS = flags.FLAGS

HUMAN, BOT = "Human: ", "XuanYuan: "


def main(argv):
  del argv
  sharding = cli.mesh_sharding(FLAGS.mesh)
  loaded = cli.load_causal_lm(sharding, FLAGS.dtype, "chat")
  model, cfg = loaded.model, loaded.cfg
  if FLAGS.quant:
    from xy_jax.quant.quantize_model import quantize_model
    q = quantize_model(model, cfg, FLAGS.quant, sharding, FLAGS.group_size)
    model, cfg = q.model, q.cfg
  tok = load_tokenizer(FLAGS.tokenizer or loaded.tokenizer_file)
  session = ChatSession(Generator(model, tok.eos_id, tok.pad_id), tok, cli.sampling_from_flags(),
                        ChatTemplate(system=FLAGS.system and cli.utf8_text(FLAGS.system, "--system")),
                        seed=FLAGS.seed)
  weights = f", weights {cfg.quant}" if cfg.quant != "none" else ""
  cli.log(f"model ready ({cfg.num_hidden_layers} layers{weights}); /reset forgets, /exit quits")
  try:
    importlib.import_module("readline")  # line editing and history for input()
  except ImportError:
    pass
  sys.stdin.reconfigure(errors="surrogateescape")  # a non-UTF-8 line is refused, not fatal
  while True:
    try:
      question = input(HUMAN).strip()
    except EOFError:
      print()
      break
    except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, as in a shell
      print()
      continue
    try:
      cli.utf8_text(question, "this line")
    except ValueError as e:
      print(f"error: {e}; the conversation is kept", file=sys.stderr, flush=True)
      continue
    if not question:
      continue
    if question in ("/exit", "/quit"):
      break
    if question == "/reset":
      session.reset()
      print("(conversation cleared)", flush=True)
      continue
    print(BOT, end="", flush=True)
    try:
      for piece in session.reply(question):
        print(piece, end="", flush=True)
    except ValueError as e:
      print(f"\nerror: {e}", file=sys.stderr, flush=True)
      continue
    except KeyboardInterrupt:  # stops this answer; the session goes on without it
      print("\n(answer interrupted)", flush=True)
      continue
    print(flush=True)
    cli.log(session.last.line())


if __name__ == "__main__":
  cli.run(main)
