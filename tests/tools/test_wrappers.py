"""tools/<program>.py are thin wrappers over xy_jax/main/<program>.py; the documented commands work
through them, including programs whose worker processes re-import the main file (spawn)."""

import os
import pathlib
import subprocess
import sys

from tests.train.train_helpers import ROOT, env

TOOLS = pathlib.Path(ROOT) / "tools"


def test_every_wrapper_names_an_existing_program_and_runs_it_only_as_main():
  wrappers = [p for p in TOOLS.glob("*.py") if "runpy.run_module" in p.read_text()]
  assert len(wrappers) >= 18
  for path in wrappers:
    text = path.read_text()
    module = text.split('runpy.run_module("')[1].split('"')[0]
    assert (pathlib.Path(ROOT) / (module.replace(".", "/") + ".py")).is_file(), path
    assert 'if __name__ == "__main__":\n  runpy.run_module(' in text, f"{path.name}: unguarded run_module"


def test_prepare_data_through_its_wrapper_finishes_with_spawned_workers(tmp_path):
  """Its tokenizer pool spawns workers, which import the main file again: an unguarded wrapper
  reran the program in each of them, and the pool never finished."""
  proc = subprocess.run([sys.executable, os.path.join(TOOLS, "prepare_data.py"),
                         f"--config={ROOT}/configs/pretrain_tiny.py", f"--config.data.prepared_dir={tmp_path}"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=180)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (tmp_path / "general" / "meta.json").is_file()
