"""Generate a continuation with a KV cache; only the generated text goes to stdout.

  python tools/generate.py --hf DIR --prompt "什么是市盈率？" [--greedy | --temperature 0.7 --top_p 0.95]
                           [--max_new_tokens 256] [--raw] [--system TEXT]

The prompt is wrapped in the XuanYuan chat template unless --raw.
"""

from absl import flags

from xy_jax import cli
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer
from xy_jax.infer.generate import Generator
from xy_jax.weights.load import load_model

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_string("prompt", None, "the question (or raw text with --raw)", required=True)
flags.DEFINE_bool("raw", False, "feed the prompt as plain text, without the chat template")
flags.DEFINE_string("system", None, "system message placed first (70B-style prompts)")
cli.define_sampling_flags()
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "compute dtype")
flags.DEFINE_string("tokenizer", None, "tokenizer.model (default: the model's)")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  cli.utf8_text(FLAGS.prompt, "--prompt")  # before loading the model
  loaded = load_model(hf=FLAGS.hf, ckpt=FLAGS.checkpoint, sharding=cli.mesh_sharding(FLAGS.mesh),
                      allow_torch_bin=FLAGS.allow_torch_bin, log=cli.log, dtype=FLAGS.dtype)
  prompt = cli.utf8_text(FLAGS.prompt, "--prompt")
  system = cli.utf8_text(FLAGS.system, "--system") if FLAGS.system else None
  tok = load_tokenizer(FLAGS.tokenizer or loaded.tokenizer_file)
  if FLAGS.raw:
    ids = tok.encode(prompt, bos=True)
  else:
    ids = ChatTemplate(system=system).encode_prompt(tok, [Message("user", prompt)])
  sampling = cli.sampling_from_flags()
  gen = Generator(loaded.model, eos_id=tok.eos_id, pad_id=tok.pad_id)
  out = gen.generate([ids], sampling, seed=FLAGS.seed)[0]
  print(tok.decode(out.tokens), flush=True)


if __name__ == "__main__":
  cli.run(main)
