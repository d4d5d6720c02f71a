"""Tokenize text sources once into memory-mapped shards for training.

  python tools/prepare_data.py --config configs/pretrain_tiny.py
  python tools/prepare_data.py --source news=data/news/*.jsonl --source books=data/books/ \
      --tokenizer tok.model --out data/prepared

Streams every file line by line (larger than RAM is fine), tokenizes on every core, shows
documents/s and tokens/s, and reports skipped records with file and line.
"""

import os
import sys
import time

from absl import flags
from ml_collections import config_flags

import xy_jax.stages  # noqa: F401  registers every stage (the tokenizer of a stage's start checkpoint)
from xy_jax import cli
from xy_jax.data.prepared import prepare_source
from xy_jax.train.pretrain import prepare_configured_source
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError

config_flags.DEFINE_config_file("config", None, "training config whose data.sources to prepare",
                                lock_config=False)
flags.DEFINE_multi_string("source", [], "NAME=PATH[,PATH...] (paths, globs or directories)")
flags.DEFINE_string("tokenizer", None, "tokenizer.model (default: the config's, else the shipped one)")
flags.DEFINE_string("out", None, "output directory (default: the config's data.prepared_dir)")
flags.DEFINE_integer("workers", None, "tokenizer processes (default: all cores)")
FLAGS = flags.FLAGS


def _sources():
  if FLAGS.source:
    out = {}
    for spec in FLAGS.source:
      if "=" not in spec:
        raise ConfigError(f"--source={spec!r}: expected NAME=PATH[,PATH...]")
      name, paths = spec.split("=", 1)
      out[name] = paths.split(",")
    return out
  if FLAGS.config is None:
    raise ConfigError("pass --config or at least one --source NAME=PATH")
  return {name: list(src.paths) for name, src in FLAGS.config.data.sources.items()}


def main(argv):
  del argv
  cfg = FLAGS.config
  out = FLAGS.out or (cfg.data.prepared_dir if cfg is not None else None)
  if not out:
    raise ConfigError("pass --out (or a --config with data.prepared_dir)")
  if FLAGS.tokenizer or cfg is None:
    tok_path = FLAGS.tokenizer
  else:  # the config's, or the one its starting checkpoint was trained with
    from xy_jax.train.setup import tokenizer_file_for
    tok_path = tokenizer_file_for(cfg, cli.log)
  tok = load_tokenizer(tok_path)
  for name, paths in _sources().items():
    start = time.time()

    def progress(docs, tokens, name=name, start=start):
      dt = max(time.time() - start, 1e-6)
      sys.stderr.write(f"\r{name}: {docs:,} docs, {tokens:,} tokens, {docs / dt:,.0f} docs/s, "
                       f"{tokens / dt:,.0f} tok/s")
      sys.stderr.flush()

    if cfg is not None and not FLAGS.source:
      cfg.data.prepared_dir = out
      meta = prepare_configured_source(cfg, name, tok)
    else:
      meta = prepare_source(name, paths, out, tok, FLAGS.workers, progress,
                            on_file=lambda p: cli.log(f"\nreading {p}"))
    sys.stderr.write("\n")
    skipped = sum(meta["skipped"].values())
    print(f"{name}: {meta['n_docs']} documents, {meta['n_tokens']} tokens -> "
          f"{os.path.join(out, name)} ({time.time() - start:.1f}s); skipped {skipped}")
    for example in meta["skipped_examples"]:
      print(f"  skipped {example}")


if __name__ == "__main__":
  cli.run(main)
