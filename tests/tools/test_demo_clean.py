"""The demo's curation step on the shipped corpus: every stage removes (or masks) something, the
planted records go for the reasons planted, the rest keep every field, and the cleaned shards are
the pretraining config's sources."""

import glob
import gzip
import json
import os

from tests.train.test_config import ROOT, load
from xy_jax.data.sources import expand_paths
from xy_jax.main.demo_clean import clean_demo_corpus, use_cleaned_sources


def _records(pattern):
  out = []
  for path in sorted(glob.glob(pattern)):
    with gzip.open(path, "rt", encoding="utf-8") as f:
      out += [json.loads(line) for line in f]
  return out


def test_each_stage_is_at_work_on_the_shipped_corpus(tmp_path):
  lines, summary = [], {}
  cleaned = clean_demo_corpus(str(tmp_path), summary, log=lines.append)
  report = json.loads((tmp_path / "clean" / "finance" / "report.json").read_text(encoding="utf-8"))
  steps = report["steps"]
  assert steps["normalize"]["dropped"] == {"empty after normalisation": 1}
  quality = steps["quality"]["dropped"]
  assert quality["language other"] == 4  # Russian, Thai, symbols, a number table
  assert {"repeated n-grams", "boilerplate", "too short", "low script share", "digits"} <= set(quality)
  assert steps["pii"]["counters"] == {"masked email": 2, "masked phone": 2, "masked id_card": 1, "masked bank_card": 2}
  assert steps["exact_dedup"]["dropped"]["exact duplicate"] >= 2
  assert steps["near_dedup"]["dropped"]["near duplicate"] >= 2

  web = {r["id"]: r for r in _records(cleaned["finance"][0]) if "id" in r}
  assert sorted(web) == ["web-001", "web-002", "web-003", "web-004", "web-005", "web-010", "web-011"]
  assert all(set(r) == {"id", "url", "text"} for r in web.values())
  masked = web["web-010"]["text"]
  assert "[PHONE]" in masked and "[EMAIL]" in masked and "[ID_CARD]" in masked and "[BANK_CARD]" in masked
  assert "13812345678" not in masked and "11010519491231002X" not in masked

  table = "\n".join(lines)
  for stage in ("normalize", "quality", "pii", "exact_dedup", "near_dedup"):
    assert f"\n{stage} " in table
  assert "4 language other" in table and "language (into quality):" in table
  docs_out = sum(json.loads((tmp_path / "clean" / n / "report.json").read_text())["documents_out"] for n in cleaned)
  assert summary["cleaning: documents in -> out"].endswith(f" -> {docs_out}")

  cfg = load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))
  use_cleaned_sources(cfg, cleaned)
  files = [f for src in cfg.data.sources.values() for f in expand_paths(list(src.paths), "paths")]
  assert files and all(f.startswith(str(tmp_path / "clean")) for f in files)
