"""Write a weight-only int8 / int4 copy of a model as an xy_jax checkpoint.

  python tools/quantize.py --checkpoint CKPT | --hf DIR  --mode int8|int4 [--group_size 128]
                           --out QCKPT [--eval_text data/pretrain/general.txt]
                           [--hf_out DIR [--format gptq|bnb]]

int8 is per output channel; int4 uses groups of --group_size contracted rows. Embeddings, norms
and value heads stay float. The result loads anywhere a checkpoint does (tools/chat.py,
tools/generate.py, tools/eval_ppl.py) and keeps the tokenizer. With --eval_text, prints the
perplexity of the float model (in bfloat16) and of the quantised one on that text, and the rise.
With --hf_out, also writes a Hugging Face directory that transformers loads as it is: GPTQ v1
4-bit for int4 (`--format gptq`), bitsandbytes LLM.int8 for int8 (`--format bnb`), with the
tokenizer, chat template and generation config.
"""

import math
import os

from absl import flags

from xy_jax import cli
from xy_jax.data.sources import SkipReport, read_documents
from xy_jax.convert.hf_quant import FORMATS, check_format, export_quantized
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.io_utils import atomic_output_dir, check_output
from xy_jax.weights.load import load_model
from xy_jax.quant.quantize_model import param_bytes, quantize_model
from xy_jax.weights.write import save_quantized

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_enum("mode", None, ["int8", "int4"], "weight format", required=True)
flags.DEFINE_integer("group_size", 128, "int4 group size along the contracted dim (0: per channel)")
flags.DEFINE_string("out", None, "checkpoint directory to create", required=True)
flags.DEFINE_bool("overwrite", False, "replace --out (and --hf_out) if it exists")
flags.DEFINE_string("hf_out", None, "also write a Hugging Face directory in --format")
flags.DEFINE_enum("format", None, list(FORMATS), "--hf_out format (default: gptq for int4, bnb for int8)")
flags.DEFINE_string("eval_text", None, "optional .txt/.jsonl: report perplexity before and after")
flags.DEFINE_integer("max_docs", 400, "documents of --eval_text to score")
FLAGS = flags.FLAGS


def perplexity(model, tok, docs) -> float:
  nll, n = PerplexityEvaluator(model, tok.pad_id).evaluate(docs)
  return math.exp(nll / n)


def main(argv):
  del argv
  fmt = FLAGS.format or {m: f for f, m in FORMATS.items()}[FLAGS.mode]
  if FLAGS.hf_out:
    check_format(fmt, FLAGS.mode)  # before loading anything
    check_output(FLAGS.hf_out, FLAGS.overwrite)
  sharding = cli.mesh_sharding(FLAGS.mesh)
  # Scales are computed from the float32 weights; inference runs in bfloat16, the release dtype.
  loaded = load_model(hf=FLAGS.hf, ckpt=FLAGS.checkpoint, sharding=sharding,
                      allow_torch_bin=FLAGS.allow_torch_bin, log=cli.log, dtype="bfloat16",
                      param_dtype="float32")
  q = quantize_model(loaded.model, loaded.cfg, FLAGS.mode, sharding, FLAGS.group_size)
  before, after = param_bytes(loaded.model), param_bytes(q.model)
  cli.log(f"{FLAGS.mode}: weights {before / 2**20:.1f} MiB (float32) -> {after / 2**20:.1f} MiB")
  with atomic_output_dir(FLAGS.out, FLAGS.overwrite) as tmp:
    save_quantized(tmp, q, loaded.kind, os.path.abspath(FLAGS.hf or FLAGS.checkpoint),
                   loaded.tokenizer_file)
  print(f"wrote {FLAGS.out}")
  if FLAGS.hf_out:
    export_quantized(q.model, q.cfg, FLAGS.hf_out, fmt, loaded.kind, loaded.tokenizer_file,
                     overwrite=FLAGS.overwrite, log=cli.log)
    print(f"wrote {FLAGS.hf_out} ({fmt})")
  if FLAGS.eval_text:
    tok = load_tokenizer(loaded.tokenizer_file)
    docs = tok.encode_batch(list(read_documents(FLAGS.eval_text, SkipReport()))[:FLAGS.max_docs],
                            bos=True)
    base, quant = perplexity(loaded.model, tok, docs), perplexity(q.model, tok, docs)
    print(f"perplexity bfloat16: {base:.4f}")
    print(f"perplexity {FLAGS.mode}: {quant:.4f}")
    print(f"perplexity rise: {100 * (quant / base - 1):.2f}%")


if __name__ == "__main__":
  cli.run(main)
