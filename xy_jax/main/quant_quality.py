"""Quality of one float model's releases: bfloat16, int8, RTN int4 and GPTQ int4, side by side.

  python tools/quant_quality.py --checkpoint CKPT | --hf DIR [--group_size 128]
      [--eval_text data/eval/heldout.txt] [--tasks ceval,financeiq] [--out quality.md]
      [--calibration PATH[:FIELD] ...] [--calibration_rows 128] [--calibration_length 2048]

One process, one load of the float weights. bf16 is the float model run in bfloat16 (the release
dtype); int8 rounds each output channel to nearest; int4 RTN rounds groups of --group_size
contracted rows; int4 GPTQ calibrates the same groups on tools/quantize.py's calibration text
(windows no longer than the model's positions). lm_head, embeddings and norms stay float in all
of them, as tools/quantize.py leaves them. Each variant is scored on the first --max_docs documents
of --eval_text (perplexity, and its rise over bf16) and on the shipped benchmark samples as
`train.eval_tasks` scores them (log-likelihood, 5-shot, unless --eval_mode/--shots), then dropped.

Prints a Markdown table: variant, weights in MiB as a release stores them (integer codes at their
width, every float tensor at 16 bits), perplexity, rise, accuracy per task (and how many answers
differ from bf16's), seconds to make the variant and to score it. --out PATH writes the table to
PATH.md and everything to PATH.json (a .md or .json suffix on PATH is dropped first).
"""

import datetime
import json
import os
import time

import jax
import jax.numpy as jnp
from absl import flags
from flax import nnx

from xy_jax import cli
from xy_jax.data.sources import SkipReport, read_documents
from xy_jax.data.tokenizer import load_tokenizer
from xy_jax.errors import ConfigError
from xy_jax.eval.run import MODES, EvalSpec, Evaluator, check_fits, read_split
from xy_jax.eval.tasks import BENCHMARKS
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.io_utils import atomic_output_file, source_commit
from xy_jax.models import int_weights
from xy_jax.models.factory import param_paths
from xy_jax.quant.calibrate import gptq_quantize_model
from xy_jax.quant.quantize_model import quantize_model, quantized_config
from xy_jax.weights.load import load_model

# As tools/quantize.py defines them: the model source, --mesh, --group_size, GPTQ's calibration.
cli.define_model_source_flags()
cli.define_mesh_flag()
flags.DEFINE_integer("group_size", 128, "int4 group size along the contracted dim (0: per channel)")
cli.define_calibration_flags("int4 GPTQ: ")
flags.DEFINE_integer("max_docs", 400, "documents of --eval_text to score")
flags.DEFINE_string("eval_text", "data/eval/heldout.txt", ".txt/.jsonl of held-out text for perplexity")
flags.DEFINE_list("tasks", ["ceval", "financeiq"], f"benchmarks to score ({', '.join(BENCHMARKS)})")
flags.DEFINE_string("bench_dir", "data/eval/bench", "folder holding one folder per benchmark")
flags.DEFINE_enum("eval_mode", "loglik", list(MODES), "how the benchmarks are scored")
flags.DEFINE_integer("shots", None, "few-shot examples (default: 5 loglik, 0 generate)")
flags.DEFINE_integer("limit", None, "first N items of each subject (default: all)")
flags.DEFINE_string("out", None, "write PATH.md (the table) and PATH.json")
FLAGS = flags.FLAGS

VARIANTS = (("bf16", None, "none"), ("int8", "int8", "rtn"), ("int4 RTN", "int4", "rtn"),
            ("int4 GPTQ", "int4", "gptq"))


def release_bytes(model: nnx.Module) -> int:
  """Bytes of the weights as a 16-bit release stores them: integer codes at their width (int4 half
  a byte), every float tensor (embeddings, norms, lm_head, scales) at 16 bits."""
  total = 0
  for v in param_paths(nnx.state(model)).values():
    a = v[...]
    bits = int_weights.storage_bits(a.dtype) if jnp.issubdtype(a.dtype, jnp.integer) else 16
    total += a.size * bits // 8
  return total


def out_stem(out: str) -> str:
  stem = out[:-3] if out.endswith(".md") else out[:-5] if out.endswith(".json") else out
  parent = os.path.dirname(os.path.abspath(stem))
  if not os.path.isdir(parent):
    raise ConfigError(f"--out={out}: no directory {parent}")
  return stem


def read_splits() -> dict:
  """Each --tasks split, read and checked before the model loads."""
  splits = {}
  for task in FLAGS.tasks:
    if task not in BENCHMARKS:
      raise ConfigError(f"--tasks={task}: choose from {', '.join(BENCHMARKS)}")
    spec = EvalSpec(task, os.path.join(FLAGS.bench_dir, task), mode=FLAGS.eval_mode, shots=FLAGS.shots,
                    limit=FLAGS.limit)
    spec.check()
    splits[spec] = read_split(spec)
  return splits


def make_variant(loaded, mode, method, sharding, rows):
  if mode is None:
    return loaded.model
  if method == "gptq":
    return gptq_quantize_model(loaded.model, loaded.cfg, rows, mode, sharding, FLAGS.group_size,
                               damp=FLAGS.damp, act_order=FLAGS.act_order, log=cli.log).model
  return quantize_model(loaded.model, loaded.cfg, mode, sharding, FLAGS.group_size).model


def score(model, tok, docs, splits, sharding, max_len) -> tuple[float, dict, dict]:
  """Perplexity, accuracy per task, and the predicted letters per task."""
  graphdef, params = nnx.split(model)
  evaluator = Evaluator(graphdef, tok, sharding, max_len, splits=splits)
  results = {spec.task: evaluator.evaluate(params, spec) for spec in splits}
  accuracy = {t: r.summary()["accuracy"] for t, r in results.items()}
  preds = {t: [rec["pred"] for rec in r.records] for t, r in results.items()}
  return PerplexityEvaluator(model, tok.pad_id).perplexity(docs), accuracy, preds


def table(rows: list[dict], splits: dict) -> str:
  tasks = [f"{s.task} acc (n={len(split.items)})" for s, split in splits.items()]
  head = ["variant", "weights MiB", "perplexity", "rise vs bf16", *tasks, "make s", "score s"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    cells = [r["variant"], f"{r['weight_bytes'] / 2**20:.2f}", f"{r['perplexity']:.4f}",
             f"{100 * r['rise']:+.2f}%",
             *(f"{r['accuracy'][s.task]:.3f} ({r['changed_answers'][s.task]} changed)" for s in splits),
             f"{r['make_seconds']:.1f}", f"{r['score_seconds']:.1f}"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  stem = out_stem(FLAGS.out) if FLAGS.out else None
  if not os.path.isfile(FLAGS.eval_text):
    raise ConfigError(f"--eval_text={FLAGS.eval_text}: no such file")
  splits = read_splits()
  sharding = cli.mesh_sharding(FLAGS.mesh)
  # Scales come from the float32 weights; every variant computes in bfloat16, the release dtype.
  loaded = load_model(hf=FLAGS.hf, ckpt=FLAGS.checkpoint, sharding=sharding,
                      allow_torch_bin=FLAGS.allow_torch_bin, log=cli.log, dtype="bfloat16",
                      param_dtype="float32")
  if loaded.kind != "causal_lm":
    raise ConfigError(f"{FLAGS.hf or FLAGS.checkpoint}: a {loaded.kind} model has no LM head to score; "
                      "pass a causal LM (a PPO checkpoint gives its actor)")
  max_len = loaded.cfg.max_position_embeddings
  for spec in splits:
    check_fits(spec, max_len)
  quantized_config(loaded.cfg, "int4", FLAGS.group_size)  # a bad --group_size stops here, not after bf16
  tok = load_tokenizer(loaded.tokenizer_file)
  docs = tok.encode_batch(list(read_documents(FLAGS.eval_text, SkipReport()))[:FLAGS.max_docs], bos=True)
  calib = cli.calibration_from_flags(tok, max_len)

  rows, base_preds = [], None
  for name, mode, method in VARIANTS:
    start = time.perf_counter()
    model = make_variant(loaded, mode, method, sharding, calib)
    jax.block_until_ready(nnx.state(model))
    made = time.perf_counter()
    ppl, accuracy, preds = score(model, tok, docs, splits, sharding, max_len)
    base_preds = base_preds or preds
    rows.append({"variant": name, "quant": mode or "none", "method": method,
                 "weight_bytes": release_bytes(model), "perplexity": ppl,
                 "rise": ppl / rows[0]["perplexity"] - 1 if rows else 0.0, "accuracy": accuracy,
                 # Accuracy on a few dozen items moves by whole answers: how many moved, vs bf16.
                 "changed_answers": {t: sum(a != b for a, b in zip(p, base_preds[t]))
                                     for t, p in preds.items()},
                 "make_seconds": made - start if mode else 0.0,
                 "score_seconds": time.perf_counter() - made})
    cli.log(f"{name}: perplexity {ppl:.4f}, " + ", ".join(f"{t} {a:.3f}" for t, a in accuracy.items()))
    del model
  text = table(rows, splits)
  print(text, flush=True)
  if stem:
    record = {"model": os.path.abspath(FLAGS.hf or FLAGS.checkpoint), "step": loaded.step,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "commit": source_commit(), "devices": cli.devices_summary(), "group_size": FLAGS.group_size,
              "eval_text": FLAGS.eval_text, "eval_documents": len(docs),
              "eval_tokens": sum(min(len(d), max_len) - 1 for d in docs),
              "calibration": {"sources": FLAGS.calibration, "rows": int(calib.shape[0]),
                              "length": int(calib.shape[1]), "damp": FLAGS.damp,
                              "act_order": FLAGS.act_order},
              "tasks": {s.task: {"split": split.split, "mode": s.mode, "shots": s.num_shots,
                                 "items": len(split.items)} for s, split in splits.items()},
              "variants": rows}
    for path, body in ((f"{stem}.md", text + "\n"), (f"{stem}.json", json.dumps(record, indent=1) + "\n")):
      with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(body)
    print(f"wrote {stem}.md, {stem}.json")


if __name__ == "__main__":
  cli.run(main)
