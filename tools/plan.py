"""Will this config fit a TPU slice, and how fast should it run? Answered by compiling the real
train step for the slice's topology, on any machine (no TPU, no weights, no data).

  pip install -e '.[tpu]'
  python tools/plan.py --config configs/pretrain_xuanyuan2_70b.py --topology v5p:4x4x8
  python tools/plan.py --config configs/pretrain_xuanyuan6b.py --topology v5p:2x2x1 --mesh 1,4,1

Prints per-chip memory (arguments, outputs, temporaries; parameters and optimizer state apart),
compiled FLOPs per step, the compiler's estimated step time, tokens/s and MFU per step shape, and
ends with three machine-readable lines: `fits: yes|no`, `per-chip memory GiB: X of Y`,
`estimated MFU: Z%`. Exits 1 when the step does not fit.
"""

import sys

from absl import flags
from ml_collections import config_flags

from xy_jax import cli

config_flags.DEFINE_config_file("config", None, "training config", lock_config=False)
flags.DEFINE_string("topology", None, "TPU slice, e.g. v5p:4x4x4, v5e:4x4, v6e:8x8", required=True)
flags.DEFINE_string("mesh", None, "data,fsdp,tensor override (one may be -1)")
flags.DEFINE_float("max_hbm_fraction", 1.0, "fail when peak memory exceeds this share of HBM")
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import os
  os.environ.setdefault("JAX_PLATFORMS", "cpu")  # compile for TPU; execute nothing
  from xy_jax.plan import make_plan, report
  cfg = FLAGS.config
  if FLAGS.mesh:
    try:
      cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor = (int(x) for x in FLAGS.mesh.split(","))
    except ValueError:
      raise ValueError(f"--mesh={FLAGS.mesh!r}: expected three integers data,fsdp,tensor") from None
  name = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")), "config")
  plan = make_plan(cfg, FLAGS.topology, name, log=cli.log)
  lines, fits = report(plan, FLAGS.max_hbm_fraction)
  print("\n".join(lines), flush=True)
  if not fits:
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
