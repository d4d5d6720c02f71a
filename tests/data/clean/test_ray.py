"""Curation (issue 22): `tools/clean_data.py --executor ray` (datatrove's Ray executor on a local
Ray with 2 CPUs, started by the command) writes the same bytes as the local executor."""

import random

import pytest

from tests.data.clean import corpus
from tests.data.clean.test_cli import run_cli
from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.run import clean


@pytest.mark.heavy
def test_ray_on_the_command_line_matches_local_byte_for_byte(tmp_path):
  pytest.importorskip("ray")
  rng = random.Random(3)
  docs = [corpus.zh_doc(rng) for _ in range(30)] + [corpus.en_doc(rng) for _ in range(30)]
  docs += [corpus.edit_chars(rng, d, 0.02) for d in docs[:10]] + docs[30:35]
  for part in range(2):
    (tmp_path / f"in{part}.txt").write_text("\n".join(docs[part::2]) + "\n")
  clean([str(tmp_path / "*.txt")], str(tmp_path / "local"), CleanSettings())
  done = run_cli("--input", str(tmp_path / "*.txt"), "--out", str(tmp_path / "ray"), "--executor", "ray",
                 "--workers", "2", timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  local = sorted(p.name for p in (tmp_path / "local").glob("*.jsonl.gz"))
  assert local and local == sorted(p.name for p in (tmp_path / "ray").glob("*.jsonl.gz"))
  for name in local:
    assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
