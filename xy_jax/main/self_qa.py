"""Self-QA: write SFT data from unlabelled documents with a chat model (the XuanYuan recipe).

  python tools/self_qa.py --checkpoint CKPT | --hf DIR --docs FILE [--docs FILE2 ...]
                          --out self_qa.jsonl [--questions_per_doc 3] [--max_docs 1000]

For each document (one per line of a .txt, or the "text" field of a .jsonl) the model writes
questions, then answers each one from the document. Empty, short, duplicate and document-referring
pairs are dropped and counted. Each output line is an SFT record ("conversations" form, readable by
the SFT stage) with "source" (file:line and the document) and "generator" (model, sampling, seed).
"""

import json
import os

from absl import flags
from tqdm import tqdm

from xy_jax import cli
from xy_jax.data.self_qa import SelfQAReport, self_qa
from xy_jax.data.sources import SkipReport, located_documents
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.infer.chat import single_turn_generate
from xy_jax.infer.generate import Generator
from xy_jax.io_utils import atomic_output_file
from xy_jax.weights.load import load_model

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_multi_string("docs", None, "document file(s): .txt (one per line) or .jsonl", required=True)
flags.DEFINE_string("out", None, "SFT JSONL to write", required=True)
flags.DEFINE_integer("questions_per_doc", 3, "questions asked per document")
flags.DEFINE_integer("max_docs", 0, "stop after this many documents (0: all)")
flags.DEFINE_integer("batch_size", 8, "documents generated together")
flags.DEFINE_integer("min_chars", 4, "shortest question/answer kept (characters, punctuation ignored)")
cli.define_sampling_flags(max_new_tokens=128, greedy=False)
flags.DEFINE_integer("max_doc_tokens", 384, "documents are cut to this many tokens in prompts")
flags.DEFINE_enum("dtype", "bfloat16", ["float32", "bfloat16"], "compute dtype")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  for path in FLAGS.docs:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"--docs={path}: no such file")
  loaded = load_model(hf=FLAGS.hf, ckpt=FLAGS.checkpoint, sharding=cli.mesh_sharding(FLAGS.mesh),
                      allow_torch_bin=FLAGS.allow_torch_bin, log=cli.log, dtype=FLAGS.dtype)
  if loaded.kind != "causal_lm":
    raise ValueError(f"{FLAGS.hf or FLAGS.checkpoint}: a {loaded.kind} model cannot write text")
  tok = load_tokenizer(loaded.tokenizer_file)
  gen = Generator(loaded.model, tok.eos_id, tok.pad_id)
  generate = single_turn_generate(gen, tok, cli.sampling_from_flags(), seed=FLAGS.seed)
  skipped = SkipReport()

  def documents():
    n = 0
    for path in FLAGS.docs:
      for where, text in located_documents(path, skipped):
        if FLAGS.max_docs and n >= FLAGS.max_docs:
          return
        n += 1
        yield where, tok.decode(tok.encode(text)[:FLAGS.max_doc_tokens])

  report = SelfQAReport()
  provenance = {"model": os.path.abspath(FLAGS.hf or FLAGS.checkpoint), "temperature": FLAGS.temperature,
                "top_p": FLAGS.top_p, "seed": FLAGS.seed}
  with atomic_output_file(FLAGS.out) as tmp, open(tmp, "w", encoding="utf-8") as f:
    bar = tqdm(unit="doc", desc="self-qa", total=FLAGS.max_docs or None)
    for record in self_qa(documents(), generate, FLAGS.questions_per_doc, FLAGS.min_chars,
                          FLAGS.batch_size, report, provenance):
      f.write(json.dumps(record, ensure_ascii=False) + "\n")
      bar.update(report.documents - bar.n)
      bar.set_postfix(kept=report.kept, refresh=False)
    bar.update(report.documents - bar.n)
    bar.close()
  for line in skipped.examples:
    cli.log(f"skipped {line}")
  if skipped.total:
    cli.log(skipped.summary())
  print(report.summary())
  print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
  cli.run(main)
