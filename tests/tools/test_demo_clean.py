"""The demo's curation step on the shipped corpus: every stage removes (or masks) something, the
planted records go for the reasons planted, the rest keep every field, number-heavy finance text
stays, and the cleaned shards are the sources of every config that reads the shipped files."""

import glob
import gzip
import json
import os

from tests.train.test_config import ROOT
from xy_jax import cli
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
  assert {"repeated n-grams", "boilerplate", "too short", "low script share"} <= set(quality)
  assert "digits" not in quality  # finance text writes its figures in digits (quality.py's limits)
  assert steps["pii"]["counters"] == {"masked email": 2, "masked phone": 2, "masked id_card": 1, "masked bank_card": 2}
  assert steps["exact_dedup"]["dropped"]["exact duplicate"] >= 2
  assert steps["near_dedup"]["dropped"]["near duplicate"] >= 2

  finance = _records(cleaned["finance"][0])
  web = {r["id"]: r for r in finance if "id" in r}
  assert sorted(web) == ["web-001", "web-002", "web-003", "web-004", "web-005", "web-010", "web-011"]
  assert all(set(r) == {"id", "url", "text"} for r in web.values())
  masked = web["web-010"]["text"]
  assert "[PHONE]" in masked and "[EMAIL]" in masked and "[ID_CARD]" in masked and "[BANK_CARD]" in masked
  assert "13812345678" not in masked and "11010519491231002X" not in masked
  interest = [r["text"] for r in finance if "按复利计算" in r["text"]]  # digits up to 0.36 of the text
  assert len(interest) >= 30 and "本金20000元，年利率3%，按复利计算1年后本息合计约为20600.00元。" in interest

  table = "\n".join(lines)
  for stage in ("normalize", "quality", "pii", "exact_dedup", "near_dedup"):
    assert f"\n{stage} " in table
  assert "4 language other" in table and "language (into quality):" in table
  largest = max(int(k) for k in report["near_duplicate_cluster_sizes"])
  assert f"the largest {largest} (finance)" in table  # the templated quarterly lines (demo_clean's docstring)
  docs_out = sum(json.loads((tmp_path / "clean" / n / "report.json").read_text())["documents_out"] for n in cleaned)
  assert summary["cleaning: documents in -> out"].endswith(f" -> {docs_out}")

  for config, sources in (("pretrain_tiny.py", ["finance", "reports", "general"]), ("sft_tiny.py", ["lm"]),
                          ("continue_tiny.py:stage2", ["general", "finance"])):
    cfg = cli.load_config_file(os.path.join(ROOT, "configs", config))
    assert sorted(use_cleaned_sources(cfg, cleaned)) == sorted(sources), config
    for name, src in cfg.data.sources.items():
      files = expand_paths(list(src.paths), "paths")
      assert files and all(f.startswith(str(tmp_path / "clean")) == (name in sources) for f in files), (config, name)
  assert cfg.data.sources["finance"].paths == cleaned["finance"]
