"""The demo's curation step: each shipped pretraining source goes through tools/clean_data.py's
pipeline into OUT/clean/<source>/ before anything is trained on it, and a table shows what every
stage did. The tokenizer, pretraining, SFT's LM mix and continued pretraining read the cleaned
shards (use_cleaned_sources), not the raw files.

The finance source takes data/raw/finance_web.jsonl along: twenty web records with planted exact
copies (one only after width and spacing are normalised), reposts with a changed header, spam, a
boilerplate page, symbols, a number table, mojibake, a too-short line, Russian and Thai text, a
record of zero-width characters only, and personal data (e-mail, phones, an ID card number, bank
cards) that is masked, not removed.

The shipped corpus itself is synthetic and templated, and loses more than half of its documents
(2600 -> 1155; 57% of its characters stay), each loss a rule working as documented:
  * exact dedup, 513: the generator repeats itself (finance.jsonl's compound-interest lines draw
    on a few dozen principal/rate/term combinations: 422 go; general.txt repeats lines: 91);
  * too short, 167: one-sentence lines under 20 Chinese characters or 10 words (147 in general.txt);
  * repeated n-grams, 119: reports that say 公司表示将继续控制成本，提升经营效率。 five times and
    more (over 30% of their characters in repeated 10-grams: 94), definitions that repeat their
    term within a short line;
  * near dedup, 639 (finance 511, general 128). Joining only the pairs with a character 5-gram
    Jaccard of 0.72 or more would remove 76 and 44. The rest is the MinHash clusters' chaining: the
    quarterly-report lines of finance.jsonl (X发布第N季度报告，营业收入为…亿元，同比增长…%。公司
    表示将继续控制成本，提升经营效率。: 524 distinct) each share half or more of their 5-grams
    with 16 others (median; the most similar other: 0.62, and 0.72 or more for 127 of them), LSH
    makes a pair at 0.6 a candidate with probability 0.21 (1-(1-0.6^8)^14), and datatrove unites
    all candidate pairs, so 448 of them form one cluster and 447 go. FineWeb's MinHash does the same (candidates are not checked
    against the threshold), and would on real feeds of templated announcements too. The demo keeps
    the pipeline's result and shows it (the table's cluster line, report.json's
    near_duplicate_cluster_sizes): the template stays in the reports source, and what is left
    (45k tokens of the demo tokenizer against 83k raw, so about 3.6 passes instead of 2 in the 80
    pretraining steps of 2048 tokens) still trains the model (held-out perplexity falls;
    tests/tools/test_demo.py). Checking each candidate pair's
    signature similarity before uniting would keep about 1150 finance documents instead of 715.
Two rules dropped legitimate text and were changed in xy_jax/data/clean/quality.py: the Chinese
digit share (finance text writes its figures in digits; 0.3 dropped 470 such lines, now 0.5) and
the most frequent 2-gram, which counted when it occurred once (a company's name in a one-sentence
item; 49 lines).
"""

from __future__ import annotations

import collections
import os

from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.recorded import clean_with_record
from xy_jax.data.sources import SkipReport, expand_paths, read_documents

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
SOURCES = {"finance": ("data/pretrain/finance.jsonl", "data/raw/finance_web.jsonl"),
           "reports": ("data/pretrain/reports",), "general": ("data/pretrain/general.txt",)}


def clean_demo_corpus(out: str, summary: dict | None = None, log=print) -> dict[str, tuple[str, ...]]:
  """Cleans each of SOURCES into `out`/clean/<source>, prints the per-stage table, and returns
  {source: (its shards' glob,)} for data.sources (use_cleaned_sources)."""
  reports = {}
  for name, paths in SOURCES.items():
    # One task per source: datatrove starts a process pool per stage when workers > 1, which here
    # costs more than the whole corpus (measured 30 s with 2 workers, 1.3 s with 1).
    reports[name] = clean_with_record([os.path.join(ROOT, p) for p in paths], os.path.join(out, "clean", name),
                                      CleanSettings(workers=1), log=log)
  for line in stage_table(reports):
    log(line)
  docs_in = sum(r["steps"]["read"]["docs_out"] for r in reports.values())
  docs_out = sum(r["documents_out"] for r in reports.values())
  if summary is not None:
    summary["cleaning: documents in -> out"] = f"{docs_in} -> {docs_out}"
  return {name: (os.path.join(out, "clean", name, "*.jsonl.gz"),) for name in SOURCES}


def use_cleaned_sources(cfg, cleaned: dict[str, tuple[str, ...]]) -> list[str]:
  """Points each of the config's data.sources that reads shipped files of a cleaned source (all its
  paths among that source's raw ones, e.g. SFT's "lm" mix reading data/pretrain/finance.jsonl) at
  the cleaned shards; returns the names of the sources it changed."""
  changed = []
  for name, source in cfg.data.sources.items():
    paths = {_absolute(p) for p in source.paths}
    for cleaned_name, raw in SOURCES.items():
      if cleaned_name in cleaned and paths and paths <= {_absolute(p) for p in raw}:
        source.paths = tuple(cleaned[cleaned_name])
        changed.append(name)
        break
  return changed


def _absolute(path: str) -> str:
  return os.path.normpath(os.path.join(ROOT, path))


def cleaned_documents(patterns) -> list[str]:
  """The documents of cleaned shards in the order prepare_data reads them."""
  return [d for f in expand_paths(list(patterns), "cleaned") for d in read_documents(f, SkipReport())]


def _merged(reports: dict) -> dict:
  steps = collections.defaultdict(lambda: {"docs_in": 0, "docs_out": 0, "dropped": collections.Counter(),
                                           "counters": collections.Counter(), "by_language": collections.Counter()})
  for report in reports.values():
    for key, s in report["steps"].items():
      m = steps[key]
      m["docs_in"] += s["docs_in"]
      m["docs_out"] += s["docs_out"]
      m["dropped"].update(s["dropped"])
      m["counters"].update(s["counters"])
      m["by_language"].update(s["by_language"])
  return steps


def stage_table(reports: dict) -> list[str]:
  """One line per stage over all sources: documents in and out, what was removed (or masked) and
  why; then the language split the quality stage saw, each source's totals, and the near-duplicate
  clusters (how many, of how many documents, the largest: MinHash's chaining shows there)."""
  steps = _merged(reports)
  lines = [f"{'stage':<20}{'docs in':>8}{'docs out':>9}  removed, by reason (or changed)"]
  for key, s in steps.items():
    what = ", ".join(f"{n} {reason}" for reason, n in s["dropped"].most_common())
    if s["counters"]:
      what += ("; " if what else "") + ", ".join(f"{n} {c}" for c, n in sorted(s["counters"].items()))
    docs_in = "" if key == "read" else s["docs_in"]  # the reader is where documents come from
    lines.append(f"{key:<20}{docs_in:>8}{s['docs_out']:>9}  {what}")
  if "quality" in steps:
    seen = {k.split(": ")[0]: n for k, n in steps["quality"]["by_language"].items() if k.endswith(": in")}
    lines.append("language (into quality): " + ", ".join(f"{n} {lang}" for lang, n in sorted(seen.items())))
  lines.append("; ".join(f"{name} {r['steps']['read']['docs_out']} -> {r['documents_out']}"
                         for name, r in reports.items()) + " documents")
  sizes = {name: {int(k): n for k, n in r["near_duplicate_cluster_sizes"].items() if int(k) > 1}
           for name, r in reports.items()}
  if any(sizes.values()):
    largest, where = max((max(c), name) for name, c in sizes.items() if c)
    lines.append(f"near-duplicate clusters (each kept once): {sum(sum(c.values()) for c in sizes.values())} of "
                 f"{sum(k * n for c in sizes.values() for k, n in c.items())} documents; the largest {largest} "
                 f"({where})")
  return lines
