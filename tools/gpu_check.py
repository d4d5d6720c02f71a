"""Every GPU check in one command, within a time budget: `python -m xy_jax.main.gpu_check` (see
its docstring). On the GPU machine run `tools/gpu_check.sh`, which installs the carried wheels first."""

from xy_jax import cli
from xy_jax.main.gpu_check import main

if __name__ == "__main__":
  cli.run(main)
