"""The demo's curation step: each shipped pretraining source goes through tools/clean_data.py's
pipeline into OUT/clean/<source>/ before it is prepared, and a table shows what every stage did.

The finance source takes data/raw/finance_web.jsonl along: twenty web records with planted exact
copies (one only after width and spacing are normalised), reposts with a changed header, spam, a
boilerplate page, symbols, a number table, mojibake, a too-short line, Russian and Thai text, a
record of zero-width characters only, and personal data (e-mail, phones, an ID card number, bank
cards) that is masked, not removed. The synthetic corpus itself is templated, so near dedup takes
many of its sentences as well.
"""

from __future__ import annotations

import collections
import os

from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.recorded import clean_with_record

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


def use_cleaned_sources(cfg, cleaned: dict[str, tuple[str, ...]]) -> None:
  """Points the config's data.sources of those names at the cleaned shards."""
  for name, paths in cleaned.items():
    if name in cfg.data.sources:
      cfg.data.sources[name].paths = tuple(paths)


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
  why; then the language split the quality stage saw, and each source's totals."""
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
  return lines
