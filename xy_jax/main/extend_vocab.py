"""Extend a LLaMA-family model's vocabulary with pieces learnt from a corpus (XuanYuan-13B/70B:
LLaMA-2 + about 7k Chinese pieces = 39,438), ready for continued pretraining.

  python tools/extend_vocab.py --hf LLAMA2_DIR | --checkpoint CKPT --corpus zh.txt,finance.jsonl \
      --new_pieces 7438 | --vocab_size 39438  --out CKPT [--model_type bpe|unigram] \
      [--pad_to_multiple_of 128] [--mesh 1,-1,1] [--overwrite]

Trains a sentencepiece model on the corpus (streamed, all cores; every 20th document of each file is
held out; a file of fewer than 20 documents is trained on whole) and appends every learnt piece the
base tokenizer lacks after all of its pieces (old ids unchanged). `model.embed_tokens` and
`lm_head` grow: old rows bit-identical, each new row the mean of the base rows of the pieces the base
tokenizer splits the new piece's text into. Writes a normal checkpoint (step 0) with the extended
tokenizer.model beside it; meta records the base and the extension. A LoRA checkpoint is merged
first (its adapters folded into the weights), so the result is a plain model. Prints tokens per
character on the held-out documents before and after, per file (in-sample for a file too small to
hold any out). A failure leaves nothing at --out; an existing --out is replaced only with --overwrite.
"""

import os

from absl import flags

from xy_jax import cli
from xy_jax.data.sources import expand_paths
from xy_jax.data.tokenizer_extension import HELD_OUT_EVERY
from xy_jax.io_utils import check_output
from xy_jax.errors import ConfigError
from xy_jax.vocab_extension import extend_vocabulary

cli.define_model_source_flags()
cli.define_mesh_flag("1,-1,1")
flags.DEFINE_list("corpus", None, "text files, globs or directories (.txt, .jsonl)", required=True)
flags.DEFINE_integer("new_pieces", None, "pieces to add")
flags.DEFINE_integer("vocab_size", None, "vocabulary size to reach (before padding)")
flags.DEFINE_string("out", None, "checkpoint directory to create", required=True)
flags.DEFINE_enum("model_type", None, ["bpe", "unigram"], "new pieces' model (default: the base's)")
flags.DEFINE_integer("pad_to_multiple_of", 1, "pad the vocabulary so it divides this (a mesh axis)")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "parameter dtype of the checkpoint")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if (FLAGS.new_pieces is None) == (FLAGS.vocab_size is None):
    raise ConfigError("pass exactly one of --new_pieces N or --vocab_size V")
  if FLAGS.new_pieces is not None and FLAGS.new_pieces <= 0:
    raise ConfigError(f"--new_pieces={FLAGS.new_pieces}: must be positive")
  if FLAGS.pad_to_multiple_of < 1:
    raise ConfigError(f"--pad_to_multiple_of={FLAGS.pad_to_multiple_of}: must be >= 1")
  check_output(FLAGS.out, FLAGS.overwrite)  # before any work
  if _within(FLAGS.hf or FLAGS.checkpoint, FLAGS.out):
    raise ConfigError(f"--out={FLAGS.out}: it holds the base model; write the extension elsewhere")
  files = expand_paths(FLAGS.corpus, "--corpus")
  sharding = cli.mesh_sharding(FLAGS.mesh)
  loaded = cli.load_causal_lm(sharding, FLAGS.dtype, "take new vocabulary rows (a reward model's "
                              "value head has none; extend the causal LM it came from)")
  result = extend_vocabulary(loaded, FLAGS.hf or FLAGS.checkpoint, files, FLAGS.out, sharding,
                             new_pieces=FLAGS.new_pieces, vocab_size=FLAGS.vocab_size,
                             model_type=FLAGS.model_type, pad_to_multiple_of=FLAGS.pad_to_multiple_of,
                             overwrite=FLAGS.overwrite, log=cli.log)
  print(f"wrote {FLAGS.out}: {result.base_size} -> {result.size} pieces ({result.new_pieces} new, "
        f"{result.padding} padding)")
  print(f"{'held-out documents of':<48} {'tokens/char before':>18} {'after':>8}")
  for f, (before, after) in result.tokens_per_char.items():
    name = os.path.relpath(f) + (" (in-sample)" if f in result.in_sample else "")
    print(f"{name:<48} {before:>18.3f} {after:>8.3f}")
  if result.in_sample:
    print(f"(in-sample: a file of fewer than {HELD_OUT_EVERY} documents holds none out; measured on "
          "the documents it was trained on)")


def _within(path: str | None, out: str) -> bool:
  """Whether `path` is `out` or lies inside it (replacing `out` would delete it)."""
  if not path:
    return False
  path, out = os.path.realpath(path), os.path.realpath(out)
  return path == out or path.startswith(out + os.sep)


if __name__ == "__main__":
  cli.run(main)
