"""tools/clean_data.py as a person runs it: a --config with a `clean` section, a bad threshold in
it (one line, exit 2), a re-run after the raw text changed. --executor ray on the command line:
test_ray.py."""

import json
import os
import random
import subprocess
import sys

from tests.data.clean import corpus
from tests.data.clean.shards import read_shards

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIG = '''
from ml_collections import ConfigDict

def get_config():
  return ConfigDict(dict(clean=dict(inputs=[{inputs!r}], out={out!r}, workers=1, t2s=True,
                                    thresholds={thresholds!r})))
'''


def run_cli(*args, timeout=300):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "clean_data.py"), *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


def _inputs(tmp_path):
  rng = random.Random(5)
  docs = [corpus.zh_doc(rng) for _ in range(12)] + [corpus.en_doc(rng) for _ in range(12)] + ["臺灣的銀行與證券市場。" + corpus.zh_doc(rng)]
  docs += docs[:3]
  with open(tmp_path / "in.jsonl", "w") as f:
    f.writelines(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(docs))
  return str(tmp_path / "in.jsonl")


def test_config_file_runs_with_its_clean_section(tmp_path):
  inputs, out = _inputs(tmp_path), str(tmp_path / "out")
  (tmp_path / "cfg.py").write_text(CONFIG.format(inputs=inputs, out=out, thresholds={"zh": {"min_length": 25}}))
  done = run_cli("--config", str(tmp_path / "cfg.py"))
  assert done.returncode == 0, done.stderr[-2000:]
  records = read_shards(out)
  assert len(records) == 25 and all(set(r) == {"id", "text"} for r in records)
  assert any(r["text"].startswith("台湾的银行与证券市场") for r in records)  # clean.t2s
  report = json.load(open(os.path.join(out, "report.json")))
  assert report["steps"]["exact_dedup"]["dropped"] == {"exact duplicate": 3}
  assert report["exact_duplicate_cluster_sizes"]["2"] == 3
  with open(os.path.join(out, "report.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_config_with_a_bad_threshold_is_one_line(tmp_path):
  (tmp_path / "cfg.py").write_text(CONFIG.format(inputs=_inputs(tmp_path), out=str(tmp_path / "out"),
                                                  thresholds={"zh": {"min_lenght": 25}}))
  done = run_cli("--config", str(tmp_path / "cfg.py"))
  assert done.returncode == 2
  assert "clean.thresholds.zh.min_lenght: no such threshold" in done.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "out").exists()


def test_edited_raw_text_is_cleaned_again_and_an_unchanged_rerun_does_nothing(tmp_path):
  inputs, out = _inputs(tmp_path), str(tmp_path / "out")
  first = run_cli("--input", inputs, "--out", out, "--workers", "1")
  assert first.returncode == 0, first.stderr[-2000:]
  assert json.load(open(os.path.join(out, "raw_inputs.json")))  # what prepare_data checks the shards against
  again = run_cli("--input", inputs, "--out", out, "--workers", "1")
  assert again.returncode == 0 and "cleaning again" not in again.stderr
  with open(inputs, "a") as f:
    f.write(json.dumps({"id": 99, "text": corpus.en_doc(random.Random(99))}) + "\n")
  edited = run_cli("--input", inputs, "--out", out, "--workers", "1")
  assert edited.returncode == 0, edited.stderr[-2000:]
  assert f"{inputs} changed since it was cleaned" in edited.stderr and "cleaning again" in edited.stderr
  assert 99 in {r["id"] for r in read_shards(out)}


def test_the_shipped_clean_config_is_valid():
  from xy_jax.cli import load_config_file
  from xy_jax.data.clean.config import settings_from_config
  from xy_jax.data.clean.pipeline import CleanSettings
  c = load_config_file(os.path.join(ROOT, "configs", "clean_corpus.py")).clean
  settings = settings_from_config(c)
  settings.check()
  assert settings == CleanSettings()  # the file writes out the defaults
  assert all(os.path.exists(os.path.join(ROOT, p)) for p in c.inputs)
