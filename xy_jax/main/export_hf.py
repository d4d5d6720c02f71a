"""Export an xy_jax checkpoint to a Hugging Face directory (LlamaForCausalLM, or
LlamaForSequenceClassification for reward models and PPO critics: `--part critic`).

  python tools/export_hf.py --checkpoint CKPT --out DIR [--dtype auto|float32|bfloat16]
  python tools/export_hf.py --checkpoint LORA_RUN --out DIR --part adapter   # a PEFT adapter

A LoRA checkpoint exports merged (adapters folded into the weights: a plain LlamaForCausalLM), or
with `--part adapter` as a PEFT adapter for `peft.PeftModel.from_pretrained(base, DIR)`.
A quantised checkpoint (tools/quantize.py) exports in a format transformers loads as it is: GPTQ
v1 4-bit for int4, bitsandbytes LLM.int8 for int8 or, with --format gptq, 8-bit GPTQ v1 (16-bit
parts in float16; --dtype is ignored).

Writes config.json, generation_config.json (the model card's sampling defaults), sharded
safetensors with an index, tokenizer.model, tokenizer_config.json (with the XuanYuan chat
template) and special_tokens_map.json (no tokenizer files, with a warning, when the model has
no tokenizer.model and --tokenizer is not given). A failure leaves nothing at --out.
"""

from absl import flags

from xy_jax import cli
from xy_jax.convert.hf import export_hf
from xy_jax.convert.hf_quant import FORMATS, export_quantized
from xy_jax.convert.peft_adapter import export_adapter, merged
from xy_jax.data.tokenizer import ChatTemplate
from xy_jax.io_utils import check_output
from xy_jax.weights.load import load_checkpoint

flags.DEFINE_string("checkpoint", None, "xy_jax checkpoint directory", required=True)
flags.DEFINE_string("out", None, "HF directory to create", required=True)
flags.DEFINE_integer("step", None, "checkpoint step (default: latest)")
flags.DEFINE_enum("part", None, ["actor", "critic", "adapter"],
                  "actor/critic: which model of a PPO checkpoint (default: actor); adapter: a LoRA "
                  "run's adapter as a PEFT directory")
flags.DEFINE_enum("dtype", "auto", ["auto", "float32", "bfloat16", "float16"],
                  "tensor dtype; auto = the dtype the model was imported from, else the parameters'")
flags.DEFINE_string("tokenizer", None, "tokenizer.model to ship (default: the checkpoint's)")
flags.DEFINE_string("system", None, "system message for the chat template (70B style)")
flags.DEFINE_integer("max_shard_mb", 2048, "largest safetensors shard, MiB")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")
flags.DEFINE_enum("format", None, list(FORMATS), "a quantised checkpoint's format (default: gptq "
                  "for int4, bnb for int8; gptq also takes int8)")
cli.define_mesh_flag("1,-1,1")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  check_output(FLAGS.out, FLAGS.overwrite)  # before reading the checkpoint
  sharding = cli.mesh_sharding(FLAGS.mesh)
  adapter = FLAGS.part == "adapter"
  loaded = load_checkpoint(FLAGS.checkpoint, sharding, FLAGS.step, None if adapter else FLAGS.part,
                           log=cli.log)
  dtype = FLAGS.dtype
  if dtype == "auto":
    dtype = loaded.meta.get("source_dtype", loaded.cfg.param_dtype)
  if adapter:
    base = loaded.meta.get("lora_base") or {}
    export_adapter(loaded.model, loaded.cfg, FLAGS.out, base.get("hf") or base.get("checkpoint"),
                   "float32" if FLAGS.dtype == "auto" else dtype, FLAGS.overwrite, log=cli.log)
    return
  if loaded.cfg.quant != "none" and not loaded.cfg.lora_rank:
    export_quantized(loaded.model, loaded.cfg, FLAGS.out, FLAGS.format, loaded.kind,
                     FLAGS.tokenizer or loaded.tokenizer_file, ChatTemplate(system=FLAGS.system),
                     FLAGS.max_shard_mb << 20, FLAGS.overwrite, log=cli.log)
    return
  cfg, model = merged(loaded.model, loaded.cfg, sharding)
  if cfg is not loaded.cfg:
    cli.log(f"folded the LoRA adapters (rank {loaded.cfg.lora_rank}) into the weights")
  export_hf(model, cfg, FLAGS.out, loaded.kind, dtype,
            FLAGS.tokenizer or loaded.tokenizer_file, ChatTemplate(system=FLAGS.system),
            FLAGS.max_shard_mb << 20, FLAGS.overwrite, log=cli.log)


if __name__ == "__main__":
  cli.run(main)
