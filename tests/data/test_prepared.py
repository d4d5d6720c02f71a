"""Prepared sources: written atomically, refused or redone when stale, never silently reused."""

import json
import os

import pytest

from xy_jax.data.prepared import PreparedSource, file_digest, prepare_source, stale_reason
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError
from xy_jax.train.pretrain import open_sources
from tests.train.test_config import ROOT, load

TOK = load_tokenizer(None)
TEXT = {"format": "text"}


def _config(tmp_path, auto_prepare):
  cfg = load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))  # the shipped config, on tmp files
  cfg.data.prepared_dir = str(tmp_path / "prepared")
  cfg.data.auto_prepare = auto_prepare
  cfg.data.sources = {"news": {"paths": (str(tmp_path / "news"),), "weight": 1.0}}
  return cfg


def _write_news(tmp_path, docs):
  d = tmp_path / "news"
  d.mkdir(exist_ok=True)
  (d / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs), encoding="utf-8")
  return d


def test_stale_when_a_file_changes_appears_or_the_tokenizer_differs(tmp_path):
  news = _write_news(tmp_path, ["市盈率上升。", "央行降息。"])
  root = str(tmp_path / "prepared")
  meta = prepare_source("news", [str(news)], root, TOK, workers=1)
  files = [str(news / "a.jsonl")]
  digest = file_digest(TOK.model_file)
  assert meta["inputs"][0][0] == os.path.abspath(files[0]) and stale_reason(root, "news", files, digest, TEXT) is None

  os.utime(files[0], ns=(1, 1))  # edited in place (same size, other time)
  assert "a.jsonl changed since" in stale_reason(root, "news", files, digest, TEXT)
  prepare_source("news", [str(news)], root, TOK, workers=1)
  (news / "b.jsonl").write_text(json.dumps({"text": "新文件"}) + "\n", encoding="utf-8")
  assert "b.jsonl is a new input file" in stale_reason(root, "news", files + [str(news / "b.jsonl")],
                                                       digest, TEXT)
  assert "tokenized with another tokenizer" in stale_reason(root, "news", files, "0" * 16, TEXT)
  assert "prepared with format='text', the config now gives 'sft'" in stale_reason(
      root, "news", files, digest, {"format": "sft"})


def test_a_partial_directory_is_detected(tmp_path):
  news = _write_news(tmp_path, ["市盈率上升。"])
  root = str(tmp_path / "prepared")
  prepare_source("news", [str(news)], root, TOK, workers=1)
  meta_path = os.path.join(root, "news", "meta.json")
  open(meta_path, "w").close()  # a disk-full meta.json: 0 bytes beside a full tokens.bin
  assert "meta.json is missing or unreadable" in stale_reason(root, "news", [str(news / "a.jsonl")],
                                                              file_digest(TOK.model_file), TEXT)
  with pytest.raises(ConfigError, match="news: .* is empty or partial"):
    PreparedSource.open(root, "news")


def test_a_failed_preparation_leaves_the_previous_source_whole(tmp_path):
  news = _write_news(tmp_path, ["第一篇。", "第二篇。"])
  root = str(tmp_path / "prepared")
  prepare_source("news", [str(news)], root, TOK, workers=1)
  before = {f: open(os.path.join(root, "news", f), "rb").read() for f in os.listdir(os.path.join(root, "news"))}
  _write_news(tmp_path, ["第三篇。"] * 50)

  def fail(docs, tokens):
    raise OSError(28, "No space left on device")

  with pytest.raises(OSError):
    prepare_source("news", [str(news)], root, TOK, workers=1, progress=fail)
  after = {f: open(os.path.join(root, "news", f), "rb").read() for f in os.listdir(os.path.join(root, "news"))}
  assert after == before and os.listdir(root) == ["news"]  # no partial directory left behind


def test_a_source_with_every_record_skipped_stops_with_the_counts(tmp_path):
  d = tmp_path / "bad"
  d.mkdir()
  (d / "x.jsonl").write_text('{broken\n{"text": ""}\n{"title": 1}\n', encoding="utf-8")
  with pytest.raises(ConfigError, match=r"data.sources.bad: no document left to train on \(skipped 3 "
                                        r"records .*malformed JSON.*; first: .*x.jsonl:1: malformed JSON"):
    prepare_source("bad", [str(d)], str(tmp_path / "prepared"), TOK, workers=1)
  assert not os.path.exists(tmp_path / "prepared" / "bad")


def test_open_sources_refuses_or_redoes_stale_data(tmp_path):
  _write_news(tmp_path, ["市盈率上升。", "央行降息。"])
  logs = []
  first = open_sources(_config(tmp_path, auto_prepare=True), TOK, logs.append)[0]
  assert first.num_docs == 2 and any("news: not prepared yet; preparing it" in l for l in logs)
  _write_news(tmp_path, ["市盈率上升。", "央行降息。", "新增一篇。"])
  with pytest.raises(ConfigError, match=r"data.sources.news: .*a.jsonl changed since .* was prepared "
                                        r".*; run `python tools/prepare_data.py"):
    open_sources(_config(tmp_path, auto_prepare=False), TOK, logs.append)
  logs.clear()
  again = open_sources(_config(tmp_path, auto_prepare=True), TOK, logs.append)[0]
  assert again.num_docs == 3 and any("a.jsonl changed since" in l and "preparing it" in l for l in logs)
  logs.clear()
  assert open_sources(_config(tmp_path, auto_prepare=False), TOK, logs.append)[0].num_docs == 3
  assert not logs  # up to date: reused without a word
