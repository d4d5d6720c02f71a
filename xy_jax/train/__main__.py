"""`python -m xy_jax.train --config configs/NAME.py --workdir DIR [--config.a.b=value ...]`

Multi-host: on TPU pods and SLURM the processes find each other automatically; elsewhere pass
`--coordinator_address host:port --num_processes N --process_id I` to every process.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from xy_jax import distributed

config_flags.DEFINE_config_file("config", None, "experiment config file (configs/*.py)",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "run directory: checkpoints, metrics.jsonl, tb/", required=True)
flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"], "join a multi-process job")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host without auto-detection)")
flags.DEFINE_integer("num_processes", None, "number of processes (with --coordinator_address)")
flags.DEFINE_integer("process_id", None, "this process's index (with --coordinator_address)")
flags.DEFINE_string("cpu_collectives", None, "gloo: cross-process collectives on CPU devices")
flags.DEFINE_integer("cpu_devices", None, "number of CPU devices per process (testing)")
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS


def _log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  import jax
  if FLAGS.cpu_devices:
    jax.config.update("jax_num_cpu_devices", FLAGS.cpu_devices)
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         FLAGS.distributed, FLAGS.cpu_collectives)
  from xy_jax.cli import USER_ERRORS
  from xy_jax.train.loop import TrainingError, run
  log = _log if jax.process_index() == 0 else (lambda *_: None)
  try:
    result = run(FLAGS.config, FLAGS.workdir, log=log)
  except USER_ERRORS as e:
    if os.environ.get("XY_JAX_TRACEBACK"):
      raise
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)
  except TrainingError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  log(f"done: {result.steps_done} steps, last loss {result.last_loss}"
      + (" (stopped by signal, resume with the same command)" if result.stopped_by_signal else ""))


if __name__ == "__main__":
  app.run(main)
