"""Write a weight-only int8 / int4 copy of a model as an xy_jax checkpoint.

  python tools/quantize.py --checkpoint CKPT | --hf DIR  --bits 4|8 [--method rtn|gptq]
                           [--group_size 128] [--calibration PATH[:FIELD] ...]
                           --out QCKPT [--eval_text data/eval/heldout.txt]
                           [--hf_out DIR [--format gptq|bnb]]

int8 is per output channel; int4 uses groups of --group_size contracted rows. Embeddings, norms,
lm_head and value heads stay float. `--method rtn` rounds each weight to nearest; `--method gptq`
calibrates (xy_jax.quant.calibrate): --calibration_rows windows of --calibration_length tokens (at
most the model's positions) of the --calibration text (by default the shipped pretraining text and
the user turns of the SFT set), layer after layer, on the --mesh. The result loads anywhere
a checkpoint does (tools/chat.py, tools/generate.py, tools/eval_ppl.py) and keeps the tokenizer.
With --eval_text, prints the perplexity of the float model (in bfloat16) and of the quantised one
on that text, and the rise. With --hf_out, also writes a Hugging Face directory that transformers
loads as it is: GPTQ v1 (`--format gptq`: 4-bit for int4, 8-bit for int8) or bitsandbytes
LLM.int8 (`--format bnb`, int8 only), by default gptq for int4 and bnb for int8, with the
tokenizer, chat template and generation config. (`--mode int4|int8` is the older spelling of
--bits.)
"""

import os

from absl import flags

from xy_jax import cli
from xy_jax.data.sources import SkipReport, read_documents
from xy_jax.convert.hf_quant import FORMATS, check_format, export_quantized, format_for
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.io_utils import atomic_output_dir, check_output
from xy_jax.weights.load import load_model
from xy_jax.errors import ConfigError
from xy_jax.quant.calibrate import gptq_quantize_model
from xy_jax.quant.quantize_model import param_bytes, quantize_model
from xy_jax.weights.write import save_quantized

cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_enum("bits", None, ["4", "8"], "integer width of the weights")
flags.DEFINE_enum("mode", None, ["int8", "int4"], "the same as --bits 8|4")
flags.DEFINE_enum("method", "rtn", ["rtn", "gptq"], "round to nearest, or GPTQ calibration")
flags.DEFINE_integer("group_size", 128, "int4 group size along the contracted dim (0: per channel)")
cli.define_calibration_flags("--method gptq: ")
flags.DEFINE_string("out", None, "checkpoint directory to create", required=True)
flags.DEFINE_bool("overwrite", False, "replace --out (and --hf_out) if it exists")
flags.DEFINE_string("hf_out", None, "also write a Hugging Face directory in --format")
flags.DEFINE_enum("format", None, list(FORMATS),
                  "--hf_out format: gptq (int4 or int8) or bnb (int8); default gptq for int4, bnb for int8")
flags.DEFINE_string("eval_text", None, "optional .txt/.jsonl: report perplexity before and after")
flags.DEFINE_integer("max_docs", 400, "documents of --eval_text to score")
FLAGS = flags.FLAGS


def weight_mode() -> str:
  if FLAGS.bits and FLAGS.mode and FLAGS.mode != f"int{FLAGS.bits}":
    raise ConfigError(f"--bits={FLAGS.bits} and --mode={FLAGS.mode} disagree: pass one of them")
  if not (FLAGS.bits or FLAGS.mode):
    raise ConfigError("pass --bits 4 or --bits 8")
  return FLAGS.mode or f"int{FLAGS.bits}"



def main(argv):
  del argv
  mode = weight_mode()
  fmt = FLAGS.format or format_for(mode)
  if FLAGS.hf_out:
    check_format(fmt, mode)  # before loading anything
    check_output(FLAGS.hf_out, FLAGS.overwrite)
  sharding = cli.mesh_sharding(FLAGS.mesh)
  # Scales are computed from the float32 weights; inference runs in bfloat16, the release dtype.
  loaded = load_model(hf=FLAGS.hf, ckpt=FLAGS.checkpoint, sharding=sharding,
                      allow_torch_bin=FLAGS.allow_torch_bin, log=cli.log, dtype="bfloat16",
                      param_dtype="float32")
  tok = load_tokenizer(loaded.tokenizer_file)
  if FLAGS.method == "gptq":
    rows = cli.calibration_from_flags(tok, loaded.cfg.max_position_embeddings)
    q = gptq_quantize_model(loaded.model, loaded.cfg, rows, mode, sharding, FLAGS.group_size,
                            damp=FLAGS.damp, act_order=FLAGS.act_order, log=cli.log)
  else:
    q = quantize_model(loaded.model, loaded.cfg, mode, sharding, FLAGS.group_size)
  before, after = param_bytes(loaded.model), param_bytes(q.model)
  cli.log(f"{mode} ({q.method}): weights {before / 2**20:.1f} MiB (float32) -> {after / 2**20:.1f} MiB")
  with atomic_output_dir(FLAGS.out, FLAGS.overwrite) as tmp:
    save_quantized(tmp, q, loaded.kind, os.path.abspath(FLAGS.hf or FLAGS.checkpoint),
                   loaded.tokenizer_file)
  print(f"wrote {FLAGS.out}")
  if FLAGS.hf_out:
    export_quantized(q.model, q.cfg, FLAGS.hf_out, fmt, loaded.kind, loaded.tokenizer_file,
                     overwrite=FLAGS.overwrite, log=cli.log)
    print(f"wrote {FLAGS.hf_out} ({fmt})")
  if FLAGS.eval_text:
    docs = tok.encode_batch(list(read_documents(FLAGS.eval_text, SkipReport()))[:FLAGS.max_docs],
                            bos=True)
    base, quant = (PerplexityEvaluator(m, tok.pad_id).perplexity(docs) for m in (loaded.model, q.model))
    print(f"perplexity bfloat16: {base:.4f}")
    print(f"perplexity {mode}: {quant:.4f}")
    print(f"perplexity rise: {100 * (quant / base - 1):.2f}%")


if __name__ == "__main__":
  cli.run(main)
