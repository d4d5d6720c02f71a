"""`python -m xy_jax.train --config configs/NAME.py --workdir DIR [--config.a.b=value ...]`

Multi-host: on TPU pods and SLURM the processes find each other automatically; elsewhere pass
`--coordinator_address host:port --num_processes N --process_id I` to every process.

Exit codes: 0 done (or stopped by SIGTERM with a checkpoint: rerun to resume), 2 a bad config or
input (one line on stderr), 3 training cannot go on (non-finite losses), 130 stopped by Ctrl-C
(with a checkpoint, unless a second Ctrl-C aborted).
"""

import signal
import sys

from absl import flags, logging
from ml_collections import config_flags

from xy_jax import cli, distributed

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


def main(argv):
  del argv
  from xy_jax.train.interrupts import Interrupts
  interrupts = Interrupts()  # first: Ctrl-C from here on stops cleanly, twice aborts at once
  logging.set_verbosity(logging.WARNING)
  import jax
  if FLAGS.cpu_devices:
    jax.config.update("jax_num_cpu_devices", FLAGS.cpu_devices)
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         FLAGS.distributed, FLAGS.cpu_collectives)
  import xy_jax.stages  # noqa: F401  registers every stage (the entry point is the composition root)
  from xy_jax.errors import TrainingError
  from xy_jax.train.loop import run
  log = cli.log if jax.process_index() == 0 else (lambda *_: None)
  try:
    result = run(FLAGS.config, FLAGS.workdir, log=log, interrupts=interrupts)
  except TrainingError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  if result.stopped_by_signal:
    log(f"stopped by {signal.Signals(result.stopped_by_signal).name} after step {result.steps_done}; "
        "rerun the same command to resume")
    if result.stopped_by_signal == signal.SIGINT:
      sys.exit(130)
    return
  log(f"done: {result.steps_done} steps, last loss {result.last_loss}")


if __name__ == "__main__":
  cli.run(main)
