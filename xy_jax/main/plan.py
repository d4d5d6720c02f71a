"""Will this config fit a TPU slice, and how fast should it run? Answered by compiling the real
train step for the slice's topology, on any machine (no TPU, no weights, no data).

  pip install -e '.[tpu]'
  python tools/plan.py --config configs/pretrain_xuanyuan2_70b.py --topology v5p:4x4x8
  python tools/plan.py --config configs/pretrain_xuanyuan6b.py --topology v5p:2x2x1 --mesh 1,4,1
  python tools/plan.py --config configs/pretrain_xuanyuan2_70b.py --topology v5e:4x4 --mesh 1,1,16 \
      --serve int4 --batch 8 --prompt_len 2048 --new_tokens 512      # a quantised chat model
  python tools/plan.py --config configs/pretrain_xuanyuan2_70b.py --topology v5p:4x4x8 --calibrate int4

Prints per-chip memory (arguments, outputs, temporaries; parameters and optimizer state apart),
compiled FLOPs per step, the compiler's estimated step time, tokens/s and MFU per step shape, and
ends with three machine-readable lines: `fits: yes|no`, `per-chip memory GiB: X of Y`,
`estimated MFU: Z%`. Exits 1 when the step does not fit. A PPO config adds the decode step's
roofline in the rollout and the training layout (HBM, FLOPs, collectives), the iteration's parts,
and ends with `decode step (rollout layout): X ms`, `decode step (training layout): Y ms`,
`estimated seconds per iteration: Z`, `rollout share: W%`. With --serve bfloat16|int8|int4 it plans
inference instead: weights and KV cache per chip, prefill and decode-step memory, decode tokens/s
(last lines `fits:`, `per-chip memory GiB:`, `estimated decode tokens/s:`). With --calibrate
int4|int8 it plans GPTQ calibration (tools/quantize.py --method gptq) on the config's mesh: the
layer forward and GPTQ programs' memory, a roofline time per part (last lines `fits:`,
`per-chip memory GiB:`, `estimated calibration minutes:`).
"""

import sys

import jax
from absl import flags
from ml_collections import config_flags

from xy_jax import cli

# Compile for TPU, execute nothing: the CPU is the only backend this process starts (libtpu is
# used for the topology alone). tools/plan.py also sets JAX_PLATFORMS before jax is imported.
jax.config.update("jax_platforms", "cpu")

config_flags.DEFINE_config_file("config", None, "training config", lock_config=False)
flags.DEFINE_string("topology", None, "TPU slice, e.g. v5p:4x4x4, v5e:4x4, v6e:8x8", required=True)
flags.DEFINE_string("mesh", None, "data,fsdp,tensor override (one may be -1)")
flags.DEFINE_float("max_hbm_fraction", 1.0, "fail when peak memory exceeds this share of HBM")
flags.DEFINE_enum("serve", None, ["bfloat16", "int8", "int4"],
                  "plan generation (prefill + decode step) with these weights instead of training")
flags.DEFINE_enum("calibrate", None, ["int8", "int4"],
                  "plan GPTQ calibration of the config's model to these weights instead of training")
flags.DEFINE_integer("calibration_rows", 128, "calibration: rows of --calibration_length tokens")
flags.DEFINE_integer("calibration_length", 2048, "calibration: tokens per row")
flags.DEFINE_integer("group_size", 128, "int4 group size (with --serve int4 or --calibrate int4)")
flags.DEFINE_integer("batch", 8, "serving: rows decoded together")
flags.DEFINE_integer("prompt_len", 1024, "serving: prompt tokens")
flags.DEFINE_integer("new_tokens", 256, "serving: generated tokens (KV cache room)")
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from xy_jax.plan.train import make_plan, report
  cfg = FLAGS.config
  if FLAGS.mesh:
    cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor = cli.parse_mesh(FLAGS.mesh)
  name = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")), "config")
  if FLAGS.calibrate:
    from xy_jax.plan.calibration import calibration_report, make_calibration_plan
    plan = make_calibration_plan(cfg, FLAGS.topology, FLAGS.calibrate, FLAGS.group_size,
                                 FLAGS.calibration_rows, FLAGS.calibration_length, config_name=name,
                                 log=cli.log)
    lines, fits = calibration_report(plan)
    print("\n".join(lines), flush=True)
    sys.exit(0 if fits else 1)
  if FLAGS.serve:
    from xy_jax.plan.serving import make_serve_plan, serve_report
    quant = "none" if FLAGS.serve == "bfloat16" else FLAGS.serve
    plan = make_serve_plan(cfg, FLAGS.topology, quant, FLAGS.group_size, FLAGS.batch,
                           FLAGS.prompt_len, FLAGS.new_tokens, name, log=cli.log)
    lines, fits = serve_report(plan)
    print("\n".join(lines), flush=True)
    sys.exit(0 if fits else 1)
  plan = make_plan(cfg, FLAGS.topology, name, log=cli.log)
  lines, fits = report(plan, FLAGS.max_hbm_fraction)
  print("\n".join(lines), flush=True)
  if not fits:
    sys.exit(1)
  if cfg.stage == "ppo":  # generation's time: a roofline per layout, then the whole iteration
    from xy_jax.plan.rollout import make_rollout_plan, rollout_report
    print("\n".join(rollout_report(make_rollout_plan(cfg, FLAGS.topology, log=cli.log))), flush=True)


if __name__ == "__main__":
  cli.run(main)
