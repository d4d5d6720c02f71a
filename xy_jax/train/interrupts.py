"""SIGTERM and Ctrl-C: stop at the next step boundary with a checkpoint; a second Ctrl-C aborts.

Python runs signal handlers only when the main thread is back in the interpreter, which can be
minutes away during an XLA compile. The handlers here only set a flag (no KeyboardInterrupt is
ever raised into jax, orbax or grain code: that is what crashed the interpreter), and a watcher
thread reads the signal wake-up pipe, so the message and a second Ctrl-C's abort happen at once,
compile or not.
"""

from __future__ import annotations

import os
import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupts:
  """Installed for the lifetime of a run (main thread only; elsewhere it watches nothing)."""

  def __init__(self):
    self.signum: int | None = None
    self._interrupts = 0
    self._old: dict = {}
    self._old_wakeup = -1
    self._pipe: tuple[int, int] | None = None
    if threading.current_thread() is not threading.main_thread():
      return
    self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}
    r, w = os.pipe()
    os.set_blocking(w, False)
    self._pipe = (r, w)
    self._old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    threading.Thread(target=self._watch, name="xy_jax-signals", daemon=True).start()

  def _handle(self, signum, frame):
    del frame
    if self.signum is None or signum == signal.SIGINT:
      self.signum = signum

  def _watch(self):
    r = self._pipe[0]
    while True:
      try:
        data = os.read(r, 64)
      except OSError:
        return
      if not data:  # restore() closed the write end
        os.close(r)
        return
      for signum in data:
        self._notice(signum)

  def _notice(self, signum: int) -> None:
    if signum == signal.SIGINT:
      self._interrupts += 1
      if self._interrupts >= 2:
        os.write(2, b"\nsecond interrupt: aborting now, nothing saved since the last checkpoint\n")
        os._exit(130)
      os.write(2, b"\ninterrupt: stopping at the next step boundary with a checkpoint "
                  b"(Ctrl-C again to abort now)\n")
    elif signum == signal.SIGTERM:
      os.write(2, b"\nSIGTERM: stopping at the next step boundary with a checkpoint\n")

  @property
  def requested(self) -> bool:
    return self.signum is not None

  def agreed(self) -> bool:
    """Every process stops at the same step when any of them was signalled."""
    if jax.process_count() == 1:
      return self.requested
    flags = multihost_utils.process_allgather(np.asarray(self.requested))
    return bool(np.any(flags))

  def restore(self) -> None:
    if self._pipe is None:
      return
    signal.set_wakeup_fd(self._old_wakeup)
    for s, h in self._old.items():
      signal.signal(s, h)
    w = self._pipe[1]
    self._pipe = None
    os.close(w)  # the watcher sees end of file and closes the read end
