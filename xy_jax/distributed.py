"""Multi-process start-up: JAX's own runtime, on TPU pods, SLURM clusters or explicit flags."""

from __future__ import annotations

import os

import jax


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
