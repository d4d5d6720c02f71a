"""tools/bucket_stats.py prints the seed's table; the run plot is written."""

import json
import os
import subprocess
import sys

from tests.train.train_helpers import ROOT, env
from xy_jax.plots import plot_training


def test_bucket_stats_table(tmp_path, prepared):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "bucket_stats.py"),
       f"--config={ROOT}/configs/pretrain_tiny.py", f"--config.data.prepared_dir={prepared}",
       "--steps=1"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].split()[:5] == ["bucket", "rows", "tokens", "share", "padding"]
  rows = {int(line.split()[0]): line.split() for line in lines[1:]}
  assert set(rows) == {64, 128, 256}
  for cells in rows.values():
    assert float(cells[-2].replace(",", "")) > 0  # measured tokens/s
  assert rows[64][-1] == "1.00"


def test_plot_training_writes_png(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  records = [{"step": s, "loss": 5.0 / s, "bucket": 64 if s % 2 else 256} for s in range(1, 21)]
  records.append({"step": 20, "eval_loss": 0.3, "eval/loss/finance": 0.3})
  metrics.write_text("\n".join(json.dumps(r) for r in records))
  png = tmp_path / "run.png"
  plot_training(str(metrics), str(png))
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
