"""Benchmark accuracy (C-Eval, CMMLU, MMLU, FinanceIQ) of a model, as lm-evaluation-harness scores it.

  python tools/evaluate.py --hf DIR | --checkpoint CKPT --task ceval|cmmlu|mmlu|financeiq \
      --data_dir DIR [--split val|test|dev] [--shots 5] [--mode loglik|generate] \
      [--subjects a,b] [--limit N] [--encoding utf-8|gbk] --out OUT [--mesh 1,-1,1] \
      [--dtype float32|bfloat16]

`loglik` (base models): lm-eval's prompts and the log-likelihood of each answer letter, one forward
pass per question. `generate` (chat models; FinanceIQ's 0-shot protocol): XuanYuan chat template,
greedy decoding, the letter extracted from the text. Prints a per-subject and per-category table
(last line `accuracy: X`) and writes OUT/results.json, OUT/items.jsonl and OUT/accuracy.png (an
existing OUT directory is written over; a file there is refused). Bad rows and files (a quote that
would swallow the rows after it, a file not in --encoding) are reported with file:line and
skipped; the data and OUT are checked before the model loads.
"""

import os
import sys

from absl import flags
from tqdm import tqdm

from xy_jax import cli
from xy_jax.data.tokenizer import ChatTemplate, load_tokenizer
from xy_jax.eval import report
from xy_jax.eval.run import MODES, EvalSpec, Evaluator, check_fits, read_split
from xy_jax.eval.tasks import BENCHMARKS
from xy_jax.io_utils import source_commit

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_enum("task", None, list(BENCHMARKS), "benchmark", required=True)
flags.DEFINE_string("data_dir", None, "the benchmark's folder, in its published layout", required=True)
flags.DEFINE_string("split", None, "split to score (default: C-Eval val, others test)")
flags.DEFINE_integer("shots", None, "few-shot examples: the first k dev rows (default: 5 loglik, 0 generate)")
flags.DEFINE_enum("mode", "loglik", list(MODES), "loglik (base models) or generate (chat models)")
flags.DEFINE_list("subjects", None, "evaluate only these subjects (file names without suffix)")
flags.DEFINE_integer("limit", None, "first N items of each subject")
flags.DEFINE_string("out", None, "output directory", required=True)
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "compute dtype")
flags.DEFINE_integer("batch_tokens", 16384, "tokens per forward batch (rows x bucket length)")
flags.DEFINE_integer("max_new_tokens", 64, "answer length in generate mode")
flags.DEFINE_string("system", None, "system message of the chat template (generate mode)")
flags.DEFINE_string("tokenizer", None, "tokenizer.model (default: the model's)")
flags.DEFINE_string("encoding", "utf-8", "encoding of the CSV files (e.g. gbk)")
FLAGS = flags.FLAGS


def check_out(out: str) -> None:
  """OUT must be (or become) a directory we can write, checked before the evaluation runs."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise ValueError(f"--out={out}: a file is there; OUT is a directory (results.json, items.jsonl, "
                     "accuracy.png): name another path")
  parent = os.path.abspath(out)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ValueError(f"--out={out}: {parent} is a file, not a directory")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ValueError(f"--out={out}: {parent} is not writable")


def main(argv):
  del argv
  spec = EvalSpec(FLAGS.task, FLAGS.data_dir, FLAGS.split, FLAGS.mode, FLAGS.shots,
                  tuple(FLAGS.subjects) if FLAGS.subjects else None, FLAGS.limit, FLAGS.max_new_tokens,
                  FLAGS.batch_tokens, FLAGS.encoding)
  spec.check()
  check_out(FLAGS.out)
  split = read_split(spec)
  for example in split.report.examples:
    cli.log(f"skipped {example}")
  if split.report.total:
    cli.log(f"{spec.task}: {split.report.summary()}")
  sharding = cli.mesh_sharding(FLAGS.mesh)
  loaded = cli.load_causal_lm(sharding, FLAGS.dtype, "answer benchmark questions")
  check_fits(spec, loaded.cfg.max_position_embeddings)
  from flax import nnx
  graphdef, params = nnx.split(loaded.model)
  tok = load_tokenizer(FLAGS.tokenizer or loaded.tokenizer_file)
  evaluator = Evaluator(graphdef, tok, sharding, loaded.cfg.max_position_embeddings,
                        ChatTemplate(system=FLAGS.system), splits={spec: split})
  cli.log(f"{spec.task} {split.split}: {len(split.items)} items in {len(split.subjects)} subjects, "
          f"{spec.mode}, {spec.num_shots}-shot, on {cli.devices_summary()}")
  with tqdm(total=len(split.items), unit="item", desc=spec.task, file=sys.stderr,
            dynamic_ncols=True) as bar:
    result = evaluator.evaluate(params, spec, bar.update)
  summary = result.summary()
  settings = {"model": os.path.abspath(FLAGS.hf or FLAGS.checkpoint), "step": loaded.step,
              "data_dir": os.path.abspath(FLAGS.data_dir), "dtype": FLAGS.dtype, "mesh": FLAGS.mesh,
              "subjects": FLAGS.subjects, "limit": FLAGS.limit, "max_new_tokens": FLAGS.max_new_tokens,
              "encoding": FLAGS.encoding,
              "commit": source_commit()}
  report.write(FLAGS.out, summary, result.records, settings)
  print(report.table(summary), flush=True)


if __name__ == "__main__":
  cli.run(main)
