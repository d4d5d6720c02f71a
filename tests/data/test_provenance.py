"""Issue 22, item 5: prepared data made from cleaned shards follows the raw text. Raw text edited,
added or removed after cleaning: preparing the old shards is refused with one line naming the raw
file, and cleaning again into the same directory starts over (an unchanged re-run does nothing)."""

import json
import os
import subprocess
import sys

import pytest

from tests.train.test_config import load
from tests.train.train_helpers import ROOT, env
from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.recorded import clean_with_record
from xy_jax.data.prepared import file_digest, prepare_source, stale_reason
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError
from xy_jax.train.pretrain import open_sources

TOK = load_tokenizer(None)
DOCS = ["央行宣布下调存款准备金率0.5个百分点，释放长期资金约一万亿元，以支持实体经济发展和稳定市场预期。",
        "The central bank cut the reserve requirement ratio by half a percentage point to support lending and growth."]
NEW = "新增的一篇关于债券市场收益率曲线变化和货币政策传导机制的分析文章，讨论了长期利率的走势和影响。"


def _clean(tmp_path, logs=None):
  return clean_with_record([str(tmp_path / "raw")], str(tmp_path / "clean"), CleanSettings(workers=1),
                           log=(logs if logs is not None else []).append)


def _shard_texts(tmp_path):
  import gzip
  with gzip.open(tmp_path / "clean" / "00000.jsonl.gz", "rt", encoding="utf-8") as f:
    return [json.loads(line)["text"] for line in f]


@pytest.fixture
def cleaned(tmp_path):
  (tmp_path / "raw").mkdir()
  (tmp_path / "raw" / "a.jsonl").write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                                    for i, t in enumerate(DOCS)), encoding="utf-8")
  _clean(tmp_path)
  return tmp_path


def test_edited_raw_text_refuses_the_old_shards_naming_the_raw_file_until_cleaned_again(cleaned):
  tmp_path, raw = cleaned, str(cleaned / "raw" / "a.jsonl")
  shard, prepared = str(cleaned / "clean" / "00000.jsonl.gz"), str(cleaned / "prepared")
  stale = lambda: stale_reason(prepared, "news", [shard], file_digest(TOK.model_file), {"format": "text"})
  assert prepare_source("news", [str(tmp_path / "clean" / "*.jsonl.gz")], prepared, TOK, workers=1)["n_docs"] == 2
  assert stale() is None

  with open(raw, "a", encoding="utf-8") as f:
    f.write(json.dumps({"id": 9, "text": NEW}, ensure_ascii=False) + "\n")
  expected = f"{raw} changed since it was cleaned into {tmp_path / 'clean'} (size or modification time); " \
             "run tools/clean_data.py on it again"
  assert stale() == expected
  with pytest.raises(ConfigError) as e:
    prepare_source("news", [shard], prepared, TOK, workers=1)
  assert str(e.value) == f"data.sources.news: {expected}"
  cfg = load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))
  cfg.data.prepared_dir, cfg.data.auto_prepare = prepared, True
  cfg.data.sources = {"news": {"paths": (shard,), "weight": 1.0}}
  with pytest.raises(ConfigError, match=f"^data.sources.news: {raw} changed since"):
    open_sources(cfg, TOK, print)  # auto_prepare too: the shards are not re-prepared while stale

  logs = []
  _clean(tmp_path, logs)
  assert logs == [f"{raw} changed since it was cleaned into {tmp_path / 'clean'} (size or modification time); "
                  "cleaning again"]
  assert NEW in _shard_texts(tmp_path)
  assert "00000.jsonl.gz changed since" in stale()  # the shards are new: prepared again
  assert prepare_source("news", [shard], prepared, TOK, workers=1)["n_docs"] == 3


def test_an_unchanged_rerun_does_nothing_and_added_or_removed_raw_files_count(cleaned):
  tmp_path, shard = cleaned, cleaned / "clean" / "00000.jsonl.gz"
  before = (shard.read_bytes(), shard.stat().st_mtime_ns)
  logs = []
  _clean(tmp_path, logs)
  assert logs == [] and (shard.read_bytes(), shard.stat().st_mtime_ns) == before

  (tmp_path / "raw" / "b.jsonl").write_text(json.dumps({"text": NEW}, ensure_ascii=False) + "\n", encoding="utf-8")
  from xy_jax.data.provenance import cleaning_stale_reason
  assert cleaning_stale_reason([str(shard)]) == (f"{tmp_path / 'raw' / 'b.jsonl'} is a new raw input since "
                                                 f"{tmp_path / 'clean'} was cleaned; run tools/clean_data.py on it again")
  _clean(tmp_path)
  assert len(_shard_texts(tmp_path)) == 3 and cleaning_stale_reason([str(shard)]) is None
  os.remove(tmp_path / "raw" / "b.jsonl")
  assert cleaning_stale_reason([str(shard)]).startswith(f"{tmp_path / 'raw' / 'b.jsonl'}, a raw input of the "
                                                        f"cleaned shards in {tmp_path / 'clean'}, is gone")


def test_prepare_data_refuses_with_one_line(cleaned):
  raw = cleaned / "raw" / "a.jsonl"
  os.utime(raw, ns=(1, 1))  # touched: same bytes, another time
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "prepare_data.py"),
                         f"--source=news={cleaned / 'clean'}/*.jsonl.gz", f"--out={cleaned / 'prepared'}"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].endswith(f"data.sources.news: {raw} changed since it was cleaned "
                                                      f"into {cleaned / 'clean'} (size or modification time); "
                                                      "run tools/clean_data.py on it again")
  assert not (cleaned / "prepared" / "news").exists()
