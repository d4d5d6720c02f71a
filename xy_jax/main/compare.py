"""Win / tie / lose of model A against model B, judged by a reward model, per category.

  python tools/compare.py --a runs/ppo/checkpoints --b runs/sft/checkpoints \
      --judge runs/rm/checkpoints --prompts data/eval/prompts.jsonl [--margin 0.1] [--png out.png]

Each of --a, --b, --judge is an xy_jax checkpoint or a Hugging Face directory (a PPO checkpoint
gives its actor). Prompts are JSONL with "prompt" and "category". Both models sample with the same
settings and seeds (the card's temperature 0.7, top-p 0.95 unless --greedy).
"""

import json
import os

from absl import flags

from xy_jax import cli
from xy_jax.data.sources import SkipReport
from xy_jax.data.tokenizer import ChatTemplate, load_tokenizer
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.weights.load import load_model
from xy_jax.rl.compare import compare, plot, table
from xy_jax.rl.prompts import read_prompts

flags.DEFINE_string("a", None, "model A (checkpoint or HF dir)", required=True)
flags.DEFINE_string("b", None, "model B (checkpoint or HF dir)", required=True)
flags.DEFINE_string("judge", None, "judge reward model (checkpoint or HF dir)", required=True)
flags.DEFINE_string("prompts", None, "JSONL prompts with categories", required=True)
flags.DEFINE_float("margin", 0.0, "tie when |R_A - R_B| <= margin")
flags.DEFINE_bool("greedy", False, "greedy decoding instead of sampling")
flags.DEFINE_float("temperature", 0.7, "sampling temperature")
flags.DEFINE_float("top_p", 0.95, "nucleus mass")
flags.DEFINE_integer("max_new_tokens", 128, "answer length limit")
flags.DEFINE_integer("seed", 0, "sampling seed (the same for both models)")
flags.DEFINE_string("png", None, "bar chart path (default: next to --out or ./compare.png)")
flags.DEFINE_string("out", None, "write every outcome as JSONL here")
flags.DEFINE_string("label_a", "A", "name of model A in the report")
flags.DEFINE_string("label_b", "B", "name of model B in the report")
cli.define_mesh_flag()
FLAGS = flags.FLAGS


def _load(path, sharding):
  is_hf = os.path.isfile(os.path.join(path, "config.json"))
  return load_model(hf=path if is_hf else None, ckpt=None if is_hf else path, sharding=sharding,
                    log=cli.log, dtype="float32")


def main(argv):
  del argv
  sharding = cli.mesh_sharding(FLAGS.mesh)
  a, b, judge = (_load(p, sharding) for p in (FLAGS.a, FLAGS.b, FLAGS.judge))
  if judge.kind != "reward":
    raise ValueError(f"--judge={FLAGS.judge}: a {judge.kind} model, not a reward model")
  tok = load_tokenizer(a.tokenizer_file)
  report = SkipReport()
  prompts = read_prompts([FLAGS.prompts], "--prompts", tok, ChatTemplate(),
                         a.cfg.max_position_embeddings - FLAGS.max_new_tokens, report)
  for line in report.examples:
    cli.log(f"skipped {line}")
  sampling = SamplingConfig(greedy=FLAGS.greedy, temperature=FLAGS.temperature, top_p=FLAGS.top_p,
                            max_new_tokens=FLAGS.max_new_tokens)
  outcomes = compare(a.model, b.model, judge.model, prompts, tok, sampling, FLAGS.margin, FLAGS.seed)
  rows = table(outcomes)
  print(f"{'category':<28} {'n':>4} {'win':>7} {'tie':>7} {'lose':>7} {'win+tie':>8}")
  for r in rows:
    print(f"{r['category']:<28} {r['n']:>4} {r['win']:>7.1%} {r['tie']:>7.1%} {r['lose']:>7.1%} "
          f"{r['win_and_tie']:>8.1%}")
  png = FLAGS.png or (os.path.splitext(FLAGS.out)[0] + ".png" if FLAGS.out else "compare.png")
  plot(rows, png, FLAGS.label_a, FLAGS.label_b)
  cli.log(f"bar chart: {png}")
  if FLAGS.out:
    with open(FLAGS.out, "w", encoding="utf-8") as f:
      for o in outcomes:
        f.write(json.dumps(o.__dict__, ensure_ascii=False) + "\n")


if __name__ == "__main__":
  cli.run(main)
