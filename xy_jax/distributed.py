"""Multi-process start-up: JAX's own runtime, on TPU pods, SLURM clusters or explicit flags."""

from __future__ import annotations

import os
from typing import Callable

import jax
import numpy as np
from xy_jax.errors import PeerFailed


def cluster_detected() -> bool:
  """A multi-host TPU slice or a SLURM job with several tasks."""
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return (int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "," in hosts
          or "MEGASCALE_COORDINATOR_ADDRESS" in os.environ)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, mode: str = "auto",
               cpu_collectives: str | None = None) -> None:
  """Join the job's other processes before any JAX computation.

  `mode`: "auto" joins when a cluster is detected or a coordinator is given; "on" always calls
  `jax.distributed.initialize` (its own auto-detection); "off" never does. `cpu_collectives`
  ("gloo") enables cross-process collectives on CPU devices, for tests and CPU clusters.
  """
  if mode == "off":
    return
  explicit = coordinator_address is not None
  if not (mode == "on" or explicit or cluster_detected()):
    return
  if cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  kwargs = {}
  if explicit:
    kwargs = dict(coordinator_address=coordinator_address, num_processes=num_processes,
                  process_id=process_id)
  jax.distributed.initialize(**kwargs)


def on_process_zero(fn: Callable[[], None], what: str) -> None:
  """Run `fn` on process 0 only; when it raises, every process raises (the others with a line
  pointing at process 0), so no process is left waiting at the next collective."""
  error = None
  if jax.process_index() == 0:
    try:
      fn()
    except Exception as e:  # re-raised below, after the others have heard
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    failed = multihost_utils.broadcast_one_to_all(np.int32(error is not None))
    if failed and error is None:
      raise PeerFailed(f"process 0 failed to {what}; its log says why")
  if error is not None:
    raise error
