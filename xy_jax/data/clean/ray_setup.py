"""Ray for the curation pipeline: `init_ray` starts or joins Ray with a worker setup hook.

datatrove's Ray executor runs each task in a `multiprocess` Pool created inside a Ray actor, a
multithreaded process. With the default fork start method a forked pool worker can inherit a lock
another thread held and wait on it for ever: seen here as a bucket stage whose pool worker sat in
`SemLock.__enter__` while the run waited. The hook makes every Ray worker start its pools through
forkserver, whose server process is single-threaded.
"""

from __future__ import annotations

HOOK = "xy_jax.data.clean.ray_setup.use_forkserver"


def use_forkserver() -> None:
  import multiprocess
  multiprocess.set_start_method("forkserver", force=True)


def init_ray(address: str | None = None, num_cpus: int | None = None, **kwargs) -> None:
  """`ray.init(address=...)` to join a cluster, else a local Ray with `num_cpus`."""
  import ray
  runtime_env = {"worker_process_setup_hook": HOOK}
  if address:
    ray.init(address=address, runtime_env=runtime_env, **kwargs)
  else:
    ray.init(num_cpus=num_cpus, runtime_env=runtime_env, **kwargs)
