"""The reward and DPO stages' pairs: pairs that carry no preference are skipped and counted, and a
source left with none stops the run with one line naming its file."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.train.train_helpers import ROOT, env
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError
from xy_jax.train.preference_steps import PairShape, preference_data

SAME = [{"prompt": f"问题{i}？", "chosen": f"回答{i}。", "rejected": f"回答{i}。"} for i in range(12)]
GOOD = [{"prompt": f"问题{i}？", "chosen": f"回答{i}。", "rejected": "不知道。"} for i in range(12)]


def _write(path, rows):
  path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
  return str(path)


def _config(stage, path):
  spec = importlib.util.spec_from_file_location(stage, os.path.join(ROOT, "configs", f"{stage}_tiny.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config()
  cfg.data.sources.pairs.paths = (path,)
  return cfg


@pytest.mark.parametrize("stage", ["reward", "dpo"])
def test_identical_pairs_are_counted_and_skipped(tmp_path, stage):
  path = _write(tmp_path / "pairs.jsonl", GOOD + SAME)
  logged = []
  data = preference_data(_config(stage, path), PairShape(64, 8, stage == "dpo"), load_tokenizer(None),
                         stage, logged.append)
  assert data.train + data.held_out == 12 and data.skipped == 12
  assert "preference data: skipped 12 records (12 chosen and rejected are the same tokens)" in logged


@pytest.mark.parametrize("stage", ["reward", "dpo"])
def test_a_source_of_only_identical_pairs_stops_naming_its_file(tmp_path, stage):
  path = _write(tmp_path / "same.jsonl", SAME)
  with pytest.raises(ConfigError) as e:
    preference_data(_config(stage, path), PairShape(64, 8, stage == "dpo"), load_tokenizer(None), stage,
                    lambda _: None)
  assert str(e.value) == (f"data.sources.pairs.paths: no usable preference pairs in {path} (skipped 12 "
                          "records (12 chosen and rejected are the same tokens))")


def test_the_reward_stage_stops_before_training_on_identical_pairs(tmp_path):
  path = _write(tmp_path / "same.jsonl", SAME)
  proc = subprocess.run(
      [sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/reward_tiny.py",
       f"--workdir={tmp_path / 'rm'}", f"--config.data.sources.pairs.paths={path}"],
      capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: data.sources.pairs.paths: no usable preference pairs in {path}"), last
  assert not os.path.exists(tmp_path / "rm" / "checkpoints")
