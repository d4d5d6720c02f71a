"""Import a Hugging Face LLaMA-style model into an xy_jax (orbax) checkpoint.

  python tools/import_hf.py --hf DIR --out CKPT [--dtype float32|bfloat16] [--mesh 1,-1,1]

Reads config.json, (sharded) safetensors and tokenizer.model. Every tensor is checked before
anything is written; tensors stream one at a time straight into sharded device arrays, so a host
needs RAM for one tensor, not the model. A failure leaves nothing at --out.
"""

from absl import flags

from xy_jax import cli
from xy_jax.weights.write import import_hf

flags.DEFINE_string("hf", None, "Hugging Face model directory", required=True)
flags.DEFINE_string("out", None, "checkpoint directory to create", required=True)
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "parameter dtype in the checkpoint")
flags.DEFINE_bool("allow_torch_bin", False,
                  "read pytorch_model.bin with torch.load(weights_only=True) when no safetensors exist")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")
cli.define_mesh_flag("1,-1,1")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  sharding = cli.mesh_sharding(FLAGS.mesh)
  cli.log(f"importing {FLAGS.hf} on {cli.devices_summary()}")
  import_hf(FLAGS.hf, FLAGS.out, sharding, FLAGS.dtype, FLAGS.allow_torch_bin, FLAGS.overwrite,
            log=cli.log)


if __name__ == "__main__":
  cli.run(main)
