"""Drop exact and near-duplicate prompts from PPO prompt files or SFT files (issue 22, item 4).

  python tools/dedup_prompts.py --input data/rl/prompts.jsonl --out prompts.dedup.jsonl
  python tools/dedup_prompts.py --input 'sft/*.jsonl' --out sft.dedup.jsonl --mode exact

Writes OUT (the records kept, each line as it was: every field kept) and a report (--report, by
default OUT with .report.json for .jsonl): records in and out, removed per kind, and each cluster
that lost records (the kept record; the removed ones with file:line, kind and similarity). Training
does the same on its own (`data.dedup_prompts`); this is for looking at what goes, or for files
other programs read. The method and its limits: xy_jax/data/clean/prompts.py.
"""

import json
import os

from absl import flags

from xy_jax import cli
from xy_jax.data.clean.prompt_files import dedup_files
from xy_jax.data.clean.prompts import PromptDedupSettings
from xy_jax.data.sources import expand_paths
from xy_jax.errors import ConfigError

flags.DEFINE_multi_string("input", [], "JSONL file, glob or directory of prompt or SFT records (repeatable)")
flags.DEFINE_string("out", None, "the deduplicated JSONL file")
flags.DEFINE_string("report", None, "report JSON (default: OUT with .report.json for .jsonl)")
flags.DEFINE_enum("mode", "near", ["near", "exact"], "exact and near duplicates, or exact ones only")
flags.DEFINE_float("threshold", PromptDedupSettings.threshold, "Jaccard similarity of character n-grams "
                   "from which two prompts are near duplicates")
flags.DEFINE_integer("n_grams", PromptDedupSettings.n_grams, "character n-gram length")
flags.DEFINE_integer("bands", PromptDedupSettings.bands, "MinHash-LSH bands")
flags.DEFINE_integer("rows", PromptDedupSettings.rows, "MinHash-LSH rows per band")
FLAGS = flags.FLAGS
SHOWN_CLUSTERS = 5


def main(argv):
  del argv
  if not FLAGS.input or not FLAGS.out:
    raise ConfigError("pass --input PATH_OR_GLOB and --out FILE.jsonl")
  files = expand_paths(FLAGS.input, "--input")
  if any(os.path.abspath(f) == os.path.abspath(FLAGS.out) for f in files):
    raise ConfigError(f"--out={FLAGS.out} is also an --input; write the result elsewhere")
  settings = PromptDedupSettings(FLAGS.mode, FLAGS.n_grams, FLAGS.threshold, FLAGS.bands, FLAGS.rows)
  settings.check("--mode", "--")
  if not os.path.isdir(os.path.dirname(os.path.abspath(FLAGS.out))):
    raise ConfigError(f"--out={FLAGS.out}: its directory does not exist")
  report = dedup_files(files, FLAGS.out, settings)
  path = FLAGS.report or (FLAGS.out[:-len(".jsonl")] if FLAGS.out.endswith(".jsonl") else FLAGS.out) + ".report.json"
  with open(path, "w", encoding="utf-8") as f:
    json.dump(report, f, ensure_ascii=False, indent=1)
  for cluster in report["clusters"][:SHOWN_CLUSTERS]:
    print(f"kept {cluster['kept']['where']}: {cluster['kept']['text'][:60]!r}")
    for r in cluster["removed"]:
      print(f"  removed {r['where']} ({r['kind']}, {r['similarity']}): {r['text'][:60]!r}")
  extra = report["not_compared"] | report["skipped"]
  print(f"{report['records_in']} records -> {report['records_out']} ({json.dumps(report['removed'], ensure_ascii=False)} "
        f"in {report['clusters_with_removals']} clusters{'; ' + json.dumps(extra, ensure_ascii=False) if extra else ''})"
        f" -> {FLAGS.out}; report {path}")


if __name__ == "__main__":
  cli.run(main)
