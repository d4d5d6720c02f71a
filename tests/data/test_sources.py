"""Reading sources: bad records are counted and reported with file and line, never fatal."""

import json
import os

import pytest

from xy_jax.data.prepared import PreparedSource, prepare_source
from xy_jax.data.sources import SkipReport, expand_paths, read_documents
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError


def test_bad_records_are_skipped_with_file_and_line(tmp_path):
  bad = tmp_path / "mixed.jsonl"
  bad.write_bytes(b'{"text": "good one"}\n{broken json\n{"text": ""}\n'
                  b'{"title": "no text"}\n{"text": "bad \xff\xfe utf8"}\n\n{"text": "good two"}\n')
  report = SkipReport()
  docs = list(read_documents(str(bad), report))
  assert docs == ["good one", "good two"]
  assert report.counts == {"malformed JSON": 1, "empty document": 1, 'no "text" string field': 1,
                           "invalid UTF-8": 1}
  assert f"{bad}:2: malformed JSON" in report.examples
  assert f"{bad}:5: invalid UTF-8" in report.examples


def test_unreadable_file_is_reported(tmp_path):
  locked = tmp_path / "locked.txt"
  locked.write_text("secret\n")
  os.chmod(locked, 0)
  report = SkipReport()
  docs = list(read_documents(str(locked), report))
  if os.geteuid() == 0:  # root reads anything; simulate with a directory instead
    docs = list(read_documents(str(tmp_path), report))
  assert docs == [] or docs == ["secret"]
  assert report.total == 1 and "unreadable file" in report.examples[-1]


def test_paths_globs_and_directories(tmp_path):
  (tmp_path / "d" / "sub").mkdir(parents=True)
  for name in ("d/a.txt", "d/sub/b.jsonl", "d/ignore.bin", "c.txt"):
    (tmp_path / name).write_text("x\n")
  files = expand_paths([str(tmp_path / "d"), str(tmp_path / "*.txt")], "data.sources.s.paths")
  assert [os.path.relpath(f, tmp_path) for f in files] == ["c.txt", "d/a.txt", "d/sub/b.jsonl"]
  with pytest.raises(ConfigError, match=r"data.sources.s.paths='.*nope.txt': no such file"):
    expand_paths([str(tmp_path / "nope.txt")], "data.sources.s.paths")
  with pytest.raises(ConfigError, match="the glob matches no file"):
    expand_paths([str(tmp_path / "*.parquet")], "data.sources.s.paths")


def test_prepare_source_counts_and_tokens(tmp_path):
  tok = load_tokenizer(None)
  src = tmp_path / "s.jsonl"
  src.write_bytes(b'{"text": "\xe5\xb8\x82\xe7\x9b\x88\xe7\x8e\x87"}\n{oops\n{"text": "The river."}\n')
  meta = prepare_source("s", [str(src)], str(tmp_path / "out"), tok, workers=2)
  assert meta["n_docs"] == 2 and meta["skipped"] == {"malformed JSON": 1}
  prepared = PreparedSource.open(str(tmp_path / "out"), "s")
  assert prepared.slice(1, 0, int(prepared.lengths()[1])).tolist() == tok.encode("The river.", True, True)


def test_a_byte_order_mark_is_not_text(tmp_path):
  bom = "\ufeff".encode("utf-8")
  jsonl, txt = tmp_path / "a.jsonl", tmp_path / "b.txt"
  jsonl.write_bytes(bom + b'{"text": "first"}\n{"text": "second"}\n')
  txt.write_bytes(bom + "第一篇\n第二篇\n".encode("utf-8"))
  report = SkipReport()
  assert list(read_documents(str(jsonl), report)) == ["first", "second"]
  assert list(read_documents(str(txt), report)) == ["第一篇", "第二篇"]
  assert report.total == 0


def test_gzipped_jsonl_reads_like_jsonl_and_a_truncated_one_is_reported(tmp_path):
  """tools/clean_data.py writes .jsonl.gz shards; preparation reads them as a source."""
  import gzip
  from xy_jax.data.sources import SkipReport, expand_paths, located_documents
  lines = [json.dumps({"text": f"文档 {i}", "id": i}, ensure_ascii=False) for i in range(50)]
  good = tmp_path / "shard-0.jsonl.gz"
  good.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
  report = SkipReport()
  assert expand_paths(str(tmp_path), "data.sources.x.paths") == [str(good)]
  docs = list(located_documents(str(good), report))
  assert [d for _, d in docs] == [f"文档 {i}" for i in range(50)] and report.total == 0
  assert docs[3][0] == f"{good}:4"
  cut = tmp_path / "cut.jsonl.gz"
  cut.write_bytes(good.read_bytes()[:-12])  # the stream ends early
  report = SkipReport()
  got = list(located_documents(str(cut), report))
  assert len(got) < 50 and report.total == 1 and "read error" in report.examples[0]


def test_a_cleaning_output_folder_gives_its_shards_only(tmp_path):
  out = tmp_path / "clean"
  (out / ".work" / "minhash").mkdir(parents=True)
  for name in ("00000.jsonl.gz", "00001.jsonl.gz", "report.json", "raw_inputs.json", ".work/minhash/00000.jsonl.gz"):
    (out / name).write_text("x\n")
  files = expand_paths([str(out)], "data.sources.s.paths")
  assert [os.path.relpath(f, out) for f in files] == ["00000.jsonl.gz", "00001.jsonl.gz"]
