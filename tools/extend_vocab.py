"""Extend a LLaMA-family model's vocabulary with pieces learnt from a corpus (XuanYuan-13B/70B:
LLaMA-2 + about 7k Chinese pieces = 39,438), ready for continued pretraining.

  python tools/extend_vocab.py --hf LLAMA2_DIR | --checkpoint CKPT --corpus zh.txt,finance.jsonl \
      --new_pieces 7438 | --vocab_size 39438  --out CKPT [--model_type bpe|unigram] \
      [--pad_to_multiple_of 128] [--mesh 1,-1,1]

Trains a sentencepiece model on the corpus (streamed, all cores; every 20th document of each file is
held out) and appends every learnt piece the base tokenizer lacks after all of its pieces (old ids
unchanged). `model.embed_tokens` and `lm_head` grow: old rows bit-identical, each new row the mean
of the base rows of the pieces the base tokenizer splits the new piece's text into. Writes a normal
checkpoint (step 0) with the extended tokenizer.model beside it; meta records the base and the
extension. Prints tokens per character on the held-out documents before and after, per file. A
failure leaves nothing at --out.
"""

import os
import re

import jax
import numpy as np
from absl import flags
from flax import nnx

from xy_jax import checkpoint, cli
from xy_jax.data.sources import SkipReport, expand_paths
from xy_jax.data.tokenizer_extension import (base_pieces_of, corpus_documents, extend, load_proto,
                                            tokens_per_char, train_pieces)
from xy_jax.io_utils import atomic_output_dir, check_output
from xy_jax.models.factory import model_from_values
from xy_jax.models.llama import CausalLM
from xy_jax.models.model_config import ConfigError
from xy_jax.models.vocab_resize import extended_rows

cli.define_model_source_flags()
cli.define_mesh_flag("1,-1,1")
flags.DEFINE_list("corpus", None, "text files, globs or directories (.txt, .jsonl)", required=True)
flags.DEFINE_integer("new_pieces", None, "pieces to add")
flags.DEFINE_integer("vocab_size", None, "vocabulary size to reach (before padding)")
flags.DEFINE_string("out", None, "checkpoint directory to create", required=True)
flags.DEFINE_enum("model_type", None, ["bpe", "unigram"], "new pieces' model (default: the base's)")
flags.DEFINE_integer("pad_to_multiple_of", 1, "pad the vocabulary so it divides this (a mesh axis)")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "parameter dtype of the checkpoint")
FLAGS = flags.FLAGS


def _check_flags():
  if (FLAGS.new_pieces is None) == (FLAGS.vocab_size is None):
    raise ConfigError("pass exactly one of --new_pieces N or --vocab_size V")
  if FLAGS.new_pieces is not None and FLAGS.new_pieces <= 0:
    raise ConfigError(f"--new_pieces={FLAGS.new_pieces}: must be positive")
  if FLAGS.pad_to_multiple_of < 1:
    raise ConfigError(f"--pad_to_multiple_of={FLAGS.pad_to_multiple_of}: must be >= 1")
  check_output(FLAGS.out)


def _base_tokenizer(loaded, source: str) -> str:
  if loaded.tokenizer_file is None:
    raise ConfigError(f"{source}: no tokenizer.model beside the model; the extension appends to "
                      "the base tokenizer, so it needs that file")
  return loaded.tokenizer_file


def _learnt_pieces(files, have: set[str], wanted: int, model_type: str, report: SkipReport) -> list[str]:
  """Train until the corpus yields `wanted` pieces the base lacks (or all it has)."""
  size = max(2 * wanted, 256)
  for _ in range(5):
    try:
      pieces = train_pieces(files, size, model_type, report)
    except RuntimeError as e:  # sentencepiece wants room for every character of the corpus first
      chars = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
      if not chars:
        raise
      size = int(chars.group(1)) + 2 * wanted
      continue
    new = [p for p in pieces if p not in have]
    if len(new) >= wanted or len(pieces) < size * 0.9:  # enough, or the corpus has no more
      break
    size *= 2
  return new


def main(argv):
  del argv
  _check_flags()
  files = expand_paths(FLAGS.corpus, "--corpus")
  report = SkipReport()
  held_out = {f: list(corpus_documents([f], report, held_out=True)) for f in files}
  if not any(held_out.values()):
    raise ConfigError(f"--corpus: no documents in {', '.join(files)} ({report.summary()})")
  sharding = cli.mesh_sharding(FLAGS.mesh)
  loaded = cli.load_causal_lm(sharding, FLAGS.dtype, "take new vocabulary rows (a reward model's "
                              "value head has none; extend the causal LM it came from)")
  source = FLAGS.hf or FLAGS.checkpoint
  if loaded.tokenizer_file is None:
    raise ConfigError(f"{source}: no tokenizer.model beside the model; the extension appends to "
                      "the base tokenizer, so it needs that file")
  base_tok = loaded.tokenizer_file
  base = load_proto(base_tok)
  base_size = len(base.pieces)
  if FLAGS.vocab_size is not None and FLAGS.vocab_size <= base_size:
    raise ConfigError(f"--vocab_size={FLAGS.vocab_size}: the base tokenizer already has {base_size} "
                      "pieces; ask for more")
  if loaded.cfg.vocab_size != base_size:
    raise ConfigError(f"{source}: vocab_size={loaded.cfg.vocab_size} but its tokenizer has {base_size} "
                      "pieces; new ids must follow the last row, so extend a model whose rows match")
  wanted = FLAGS.new_pieces or FLAGS.vocab_size - base_size
  model_type = FLAGS.model_type or {1: "unigram", 2: "bpe"}.get(base.trainer_spec.model_type, "bpe")
  cli.log(f"training a {model_type} sentencepiece model on {len(files)} file(s) for {wanted} new pieces")
  new = _learnt_pieces(files, {p.piece for p in base.pieces}, wanted, model_type, report)
  if report.total:
    cli.log(f"corpus: {report.summary()}")
  if len(new) < wanted:
    cli.log(f"warning: the corpus yields only {len(new)} pieces the base lacks ({wanted} asked)")
  ext = extend(base_tok, new, wanted, FLAGS.pad_to_multiple_of)
  cli.log(f"vocabulary: {base_size} + {len(ext.new_pieces)} new + {ext.padding} padding = {ext.size}")

  # The two vocabulary tables grow on the host; every other array stays where it was loaded.
  base_ids = base_pieces_of(base_tok, ext.new_pieces)
  values = nnx.to_pure_dict(nnx.state(loaded.model))
  embed = np.asarray(jax.device_get(values["model"]["embed_tokens"]["weight"]))  # [V, D]
  head = np.asarray(jax.device_get(values["lm_head"]["weight"]))  # [D, V]
  values["model"]["embed_tokens"]["weight"] = extended_rows(embed, base_ids, ext.padding)
  values["lm_head"]["weight"] = np.ascontiguousarray(extended_rows(head.T, base_ids, ext.padding).T)
  cfg = loaded.cfg.replace(vocab_size=ext.size)
  model = model_from_values(CausalLM, cfg, sharding, values)

  before = {f: tokens_per_char(base_tok, docs) for f, docs in held_out.items() if docs}
  after = {f: tokens_per_char(ext.proto.SerializeToString(), docs) for f, docs in held_out.items() if docs}
  meta = {"model": cfg.to_dict(), "kind": "causal_lm", "stage": "extend_vocab",
          "source_dtype": loaded.meta.get("source_dtype", FLAGS.dtype),
          "vocab_extension": {"base": os.path.abspath(source), "base_size": base_size,
                              "new_pieces": len(ext.new_pieces), "padding": ext.padding,
                              "size": ext.size, "model_type": model_type,
                              "corpus": [os.path.abspath(f) for f in files],
                              "tokens_per_char": {f: [before[f], after[f]] for f in before}}}
  with atomic_output_dir(FLAGS.out) as tmp:
    tok_file = os.path.join(tmp, "extended.model")
    with open(tok_file, "wb") as f:
      f.write(ext.proto.SerializeToString())
    checkpoint.save_model(tmp, nnx.to_pure_dict(nnx.state(model)), meta, 0, tok_file)
    os.remove(tok_file)
  print(f"wrote {FLAGS.out}: {base_size} -> {ext.size} pieces ({len(ext.new_pieces)} new, "
        f"{ext.padding} padding)")
  print(f"{'held-out documents of':<48} {'tokens/char before':>18} {'after':>8}")
  for f in before:
    print(f"{os.path.relpath(f):<48} {before[f]:>18.3f} {after[f]:>8.3f}")


if __name__ == "__main__":
  cli.run(main)
