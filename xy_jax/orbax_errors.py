"""Orbax and tensorstore failures as one line for a person, and the noise they leave behind.

A failed restore or save leaves orbax's other pending reads and writes failing one by one, from
other threads and long after, each printing a traceback (as unraisable errors, asyncio's "exception
was never retrieved", or orbax's own error logs). The failure itself reaches the caller as an
exception and is reported once, so those are dropped.
"""

from __future__ import annotations

import logging as pylogging
import os
import re
import sys


def _orphaned_read(u) -> bool:
  """An unraisable error from an array read of a restore that already failed (or its event loop)."""
  if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed":
    return True
  return "read_array" in getattr(getattr(u.object, "cr_code", None), "co_name", "")


class _BackgroundNoise(pylogging.Filter):
  """asyncio's "exception was never retrieved" and orbax's own error logs of a failed save or
  restore: the failure itself reaches the caller as an exception, reported once."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    if "exception was never retrieved" in str(record.msg):
      return False
    return not (record.levelno >= pylogging.ERROR and "orbax" in record.pathname)


def quiet_background_errors() -> None:
  """Drop the background noise of failed reads and writes. Idempotent; XY_JAX_TRACEBACK=1 keeps it."""
  previous = sys.unraisablehook
  if getattr(previous, "xy_jax", False) or os.environ.get("XY_JAX_TRACEBACK"):
    return

  def hook(u):
    if not _orphaned_read(u):
      previous(u)

  hook.xy_jax = True
  sys.unraisablehook = hook
  for name in ("asyncio", "absl"):
    pylogging.getLogger(name).addFilter(_BackgroundNoise())


def io_failure(e: Exception) -> str:
  """One line for a failed read or write (the pending ones it leaves behind are silenced)."""
  quiet_background_errors()
  text = str(e).strip().split(". See full TensorStore details")[0]
  code = re.search(r"os_error_code='(\d+)'", text)
  if code:  # tensorstore's I/O errors end with the errno: name it as the OS does
    path = re.search(r'Failed (?:writing|reading): "([^"]+)"', text)
    return f"{path.group(1) if path else 'checkpoint file'}: {os.strerror(int(code.group(1)))}"
  return (text.splitlines()[0][:200] if text else type(e).__name__)
