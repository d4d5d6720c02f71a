"""Sample candidate answers for people to compare; the output imports with `annotate import`.

  python tools/sample_candidates.py --model runs/sft_tiny/checkpoints --prompts data/eval/prompts.jsonl \
      --k 2 --out cands.jsonl                                    # preference pairs from one model
  python tools/sample_candidates.py --model_a runs/ppo_tiny/checkpoints --model_b runs/sft_tiny/checkpoints \
      --prompts data/eval/prompts.jsonl --k 1 --out ab.jsonl     # A/B (GSB) pairs, the same seeds

Each model is an xy_jax checkpoint or a Hugging Face directory. Answer j of every prompt is sampled
with seed --seed + j (the card's temperature 0.7, top-p 0.95, 256 new tokens unless told). Prompts
repeated up to whitespace are sampled once; empty and near-duplicate answers are dropped (the
rules: xy_jax/annotate/candidates.py). Every line carries prompt, category, answer_a / answer_b,
model_a / model_b (--name_a / --name_b, default the paths) and seed_a / seed_b.
"""

import json
import os

from absl import flags

from xy_jax import cli
from xy_jax.annotate import candidates as cand
from xy_jax.data.sources import SkipReport
from xy_jax.data.tokenizer import ChatTemplate, load_tokenizer
from xy_jax.infer.generate import Generator
from xy_jax.rl.prompts import read_prompts
from xy_jax.weights.load import load_model

flags.DEFINE_string("model", None, "the one model (checkpoint or HF dir): pairs of its own answers")
flags.DEFINE_string("model_a", None, "A/B mode: model A (checkpoint or HF dir)")
flags.DEFINE_string("model_b", None, "A/B mode: model B (checkpoint or HF dir)")
flags.DEFINE_string("name_a", None, "model A's (or --model's) name in the items (default: its path)")
flags.DEFINE_string("name_b", None, "model B's name in the items (default: its path)")
flags.DEFINE_string("prompts", None, "JSONL prompts with categories", required=True)
flags.DEFINE_string("out", None, "JSONL items to write", required=True)
flags.DEFINE_integer("k", 2, "answers per prompt (per model), seeds --seed .. --seed + k - 1")
flags.DEFINE_float("near_duplicate", cand.NEAR_DUPLICATE,
                   "drop an answer whose character 3-gram Jaccard with an earlier kept one is >= this")
flags.DEFINE_integer("batch", 8, "prompts per generate call")
cli.define_sampling_flags(greedy=False)
cli.define_mesh_flag()
FLAGS = flags.FLAGS


def _models() -> list[tuple[str, str]]:
  """[(name, path)]: one model, or A then B."""
  if bool(FLAGS.model) == bool(FLAGS.model_a or FLAGS.model_b):
    raise ValueError("pass either --model PATH, or both --model_a PATH and --model_b PATH")
  if FLAGS.model:
    return [(FLAGS.name_a or FLAGS.model, FLAGS.model)]
  if not (FLAGS.model_a and FLAGS.model_b):
    raise ValueError("A/B mode needs both --model_a and --model_b")
  return [(FLAGS.name_a or FLAGS.model_a, FLAGS.model_a), (FLAGS.name_b or FLAGS.model_b, FLAGS.model_b)]


def _load(path, sharding):
  is_hf = os.path.isfile(os.path.join(path, "config.json"))
  loaded = load_model(hf=path if is_hf else None, ckpt=None if is_hf else path, sharding=sharding,
                      log=cli.log, dtype="float32")
  if loaded.kind != "causal_lm":
    raise ValueError(f"{path}: a {loaded.kind} model cannot answer prompts; pass a causal LM")
  return loaded


def _sample(loaded, name, prompts, tok, sampling) -> list[list[cand.Candidate]]:
  """Per prompt, its k candidates from this model."""
  gen = Generator(loaded.model, tok.eos_id, tok.pad_id)
  out = [[] for _ in prompts]
  for j in range(FLAGS.k):
    seed = FLAGS.seed + j
    for i in range(0, len(prompts), FLAGS.batch):
      chunk = prompts[i:i + FLAGS.batch]
      for n, g in enumerate(gen.generate([p.ids for p in chunk], sampling, seed=seed)):
        out[i + n].append(cand.Candidate(name, seed, tok.decode(g.tokens)))
  return out


def main(argv):
  del argv
  if FLAGS.k < 1 or not 0 < FLAGS.near_duplicate <= 1:
    raise ValueError(f"--k={FLAGS.k} must be >= 1 and --near_duplicate={FLAGS.near_duplicate} in (0, 1]")
  models = _models()
  if len(models) == 1 and FLAGS.k < 2:
    raise ValueError(f"--k={FLAGS.k}: one model needs at least 2 answers per prompt to make a pair")
  if os.path.exists(FLAGS.out):
    raise ValueError(f"--out={FLAGS.out} already exists; remove it or choose another path")
  sharding = cli.mesh_sharding(FLAGS.mesh)
  loaded = [_load(path, sharding) for _, path in models]
  tok = load_tokenizer(loaded[0].tokenizer_file)
  sampling = cli.sampling_from_flags()
  report = SkipReport()
  limit = min(m.cfg.max_position_embeddings for m in loaded) - FLAGS.max_new_tokens
  prompts = read_prompts([FLAGS.prompts], "--prompts", tok, ChatTemplate(), limit, report)
  for line in report.examples:
    cli.log(f"skipped {line}")
  prompts, repeats = cand.unique_prompts(prompts)
  if not prompts:
    raise ValueError(f"--prompts={FLAGS.prompts}: no usable prompt")
  cli.log(f"{len(prompts)} prompts ({repeats} repeated ones dropped), {FLAGS.k} answers each per model")
  sampled = [_sample(m, name, prompts, tok, sampling) for m, (name, _) in zip(loaded, models)]
  rows, dropped = [], 0
  for i, p in enumerate(prompts):
    kept = []
    for per_model in sampled:
      k, d = cand.distinct(per_model[i], FLAGS.near_duplicate)
      kept.append(k)
      dropped += d
    rows += [cand.item(p.text, p.category, a, b) for a, b in cand.pairs(*kept)]
  tmp = FLAGS.out + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  os.replace(tmp, FLAGS.out)
  print(f"{FLAGS.out}: {len(rows)} items from {len(prompts)} prompts; "
        f"{dropped} empty or near-duplicate answers dropped")


if __name__ == "__main__":
  cli.run(main)
