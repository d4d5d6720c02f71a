"""Curate text sources before tokenisation (normalise, language, quality, PII, exact and near dedup).

  python tools/clean_data.py --input 'data/raw/*.jsonl.gz' --input books/ --out data/clean
  python tools/clean_data.py --config configs/clean.py --executor ray --ray_address auto

Writes DIR/*.jsonl.gz (every input field kept, the text cleaned), DIR/report.json and
DIR/raw_inputs.json (the raw files read, for prepare_data's staleness check). Re-running a finished
run does nothing (datatrove's completion markers under DIR/.work/logs) and a killed one resumes;
when a raw file was edited, added or removed, or the settings changed, the run starts over.
"""

import json

from absl import flags
from ml_collections import config_flags

from xy_jax import cli
from xy_jax.data.clean.config import settings_from_config
from xy_jax.data.clean.ray_setup import init_ray
from xy_jax.data.clean.recorded import clean_with_record
from xy_jax.errors import ConfigError

config_flags.DEFINE_config_file("config", None, "config with a `clean` section (inputs, out, executor, "
                                "n_grams, bands, rows, num_perm, workers, t2s, language_model, "
                                "thresholds)", lock_config=False)
flags.DEFINE_multi_string("input", [], "path, glob or directory of .txt/.jsonl/.jsonl.gz (repeatable)")
flags.DEFINE_string("out", None, "output directory")
flags.DEFINE_enum("executor", None, ["local", "ray"], "datatrove executor (default local)")
flags.DEFINE_string("ray_address", None, "ray.init(address=...) (default: a local Ray)")
flags.DEFINE_integer("workers", None, "parallel tasks (default 2)")
flags.DEFINE_bool("t2s", None, "traditional -> simplified Chinese through OpenCC before normalising (clean.t2s)")
flags.DEFINE_string("language_model", None, "a fastText language-ID model (lid.176.bin, GlotLID's "
                    "model.bin) to route languages by instead of the script share (clean.language_model)")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  c = FLAGS.config.clean if FLAGS.config is not None and "clean" in FLAGS.config else {}
  inputs = FLAGS.input or list(c.get("inputs", ()))
  out = FLAGS.out or c.get("out")
  if not inputs or not out:
    raise ConfigError("pass --input PATH_OR_GLOB and --out DIR (or a --config with clean.inputs, clean.out)")
  settings = settings_from_config(c)
  if FLAGS.workers:
    settings.workers = FLAGS.workers
  if FLAGS.t2s is not None:
    settings.t2s = FLAGS.t2s
  if FLAGS.language_model:
    settings.language_model = FLAGS.language_model
  settings.check()  # a bad setting is one line before anything is written
  executor = FLAGS.executor or c.get("executor", "local")
  if executor == "ray":
    init_ray(FLAGS.ray_address or c.get("ray_address"), settings.workers)
  report = clean_with_record(inputs, out, settings, executor, log=cli.log)
  for line in report["bad_input"]["empty sources"]:
    cli.log(f"--input {line}: skipped")
  for key, step in report["steps"].items():
    print(f"{key}: {step['docs_in']} -> {step['docs_out']} docs, dropped {json.dumps(step['dropped'], ensure_ascii=False)}"
          f"{', ' + json.dumps(step['counters'], ensure_ascii=False) if step['counters'] else ''}")
  print(f"{report['documents_out']} documents -> {out} (report.json)")


if __name__ == "__main__":
  cli.run(main)
