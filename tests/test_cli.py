"""xy_jax.cli: a failure is one `error:` line, and it stays the last line on stderr."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A coroutine left pending by a failed background write, collected only at interpreter exit.
PROGRAM = textwrap.dedent("""
  from xy_jax import cli

  async def pending_write():
    pass

  LEFT_BEHIND = []

  def main(argv):
    LEFT_BEHIND.append(pending_write())
    raise OSError("disk full")

  cli.run(main)
""")


def test_error_line_is_last_even_with_a_coroutine_left_pending():
  proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, cwd=ROOT,
                        timeout=120)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert lines[-1] == "error: disk full", proc.stderr
  assert "never awaited" not in proc.stderr
