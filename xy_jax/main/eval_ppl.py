"""Perplexity of a model on a text file.

  python tools/eval_ppl.py --hf DIR --text FILE.txt|FILE.jsonl|DIR [--batch_size 8]

Each non-empty line of a .txt (or the "text" field of each .jsonl record) is one document,
tokenized as [BOS] + ids; perplexity = exp(total NLL of every token after the first / their count).
Unreadable lines are skipped and reported with file and line.
"""

import math

from absl import flags

from xy_jax import cli
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.data.sources import SkipReport, expand_paths, read_documents
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.weights.load import load_model

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_string("text", None, ".txt or .jsonl file, a glob, or a directory of them", required=True)
flags.DEFINE_integer("batch_size", 8, "documents per forward pass")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "compute dtype")
flags.DEFINE_string("tokenizer", None, "tokenizer.model (default: the model's)")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  files = expand_paths(FLAGS.text, "--text")
  if not files:
    raise FileNotFoundError(f"--text={FLAGS.text}: a directory with no .txt or .jsonl file")
  loaded = load_model(hf=FLAGS.hf, ckpt=FLAGS.checkpoint, sharding=cli.mesh_sharding(FLAGS.mesh),
                      allow_torch_bin=FLAGS.allow_torch_bin, log=cli.log, dtype=FLAGS.dtype)
  tok = load_tokenizer(FLAGS.tokenizer or loaded.tokenizer_file)
  report = SkipReport()
  docs = tok.encode_batch([d for f in files for d in read_documents(f, report)], bos=True)
  for line in report.examples:
    cli.log(f"skipped {line}")
  if report.total:
    cli.log(report.summary())
  too_long = sum(len(d) > loaded.cfg.max_position_embeddings for d in docs)
  if too_long:
    cli.log(f"{too_long} document(s) truncated to {loaded.cfg.max_position_embeddings} tokens")
  if not docs:
    raise ValueError(f"--text={FLAGS.text}: no documents to evaluate")
  nll, count = PerplexityEvaluator(loaded.model, tok.pad_id).evaluate(docs, FLAGS.batch_size)
  if count == 0:
    raise ValueError(f"{FLAGS.text}: every document is a single token; nothing to predict")
  print(f"perplexity: {math.exp(nll / count):.6f}")
  print(f"tokens: {count}")
  print(f"documents: {len(docs)} (skipped {report.total})")


if __name__ == "__main__":
  cli.run(main)
