"""xy_jax: the XuanYuan financial-LLM training pipeline in JAX."""

import glob as _glob
import os as _os

__version__ = "0.1.0"

GOOGLE_PCI_VENDOR = "0x1ae0"  # TPU chips (jax's own hardware check reads the same files)


def tpu_attached() -> bool:
  """Whether this host has a TPU chip: an accelerator device node or a Google PCI device."""
  if _glob.glob("/dev/accel*") or _glob.glob("/dev/vfio/[0-9]*"):
    return True
  for vendor in _glob.glob("/sys/bus/pci/devices/*/vendor"):
    try:
      with open(vendor) as f:
        if f.read().strip() == GOOGLE_PCI_VENDOR:
          return True
    except OSError:
      continue
  return False


def _leave_libtpu_unloaded() -> None:
  """Drop JAX's TPU backend on a host without a TPU, unless JAX_PLATFORMS chooses the platforms.

  With libtpu installed (the `tpu` extra, for the planner) JAX otherwise loads it in every process
  to look for chips, and loading it takes the host-wide /tmp/libtpu_lockfile: any running xy_jax
  process then made the planner, the one user of libtpu here, fail to load it.
  """
  if _os.environ.get("JAX_PLATFORMS") or "JAX_FORCE_TPU_INIT" in _os.environ or tpu_attached():
    return
  try:
    from jax.extend.backend import register_backend_factory
  except ImportError:
    return
  try:  # the platform stays known (lowering rules name it); only its client is never made here
    register_backend_factory("tpu", _no_tpu_client, priority=300, fail_quietly=True)
  except RuntimeError:  # backends already initialised by whoever imported jax first
    pass


def _no_tpu_client():
  raise RuntimeError("no TPU on this host, so xy_jax leaves libtpu unloaded (JAX_PLATFORMS=tpu "
                     "forces it)")


_leave_libtpu_unloaded()
