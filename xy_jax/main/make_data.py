"""Write the shipped data files from the project's own templates and facts (no downloads).

  python tools/make_data.py --out data

data/pretrain/finance.jsonl   short finance items ({"text": ...} per line)
data/pretrain/reports/*.txt   long multi-paragraph reports (one document per line), a directory source
data/pretrain/general.txt     general text, one document per line
data/sft/finance_qa.jsonl     SFT conversations (both the "conversations" and prompt/response forms)
data/preference/pairs.jsonl   preference pairs {"prompt", "chosen", "rejected"}
data/rl/prompts.jsonl         PPO prompts {"prompt", "category"}
data/eval/prompts.jsonl       categorised evaluation prompts (the seeds' general and finance categories)
data/eval/heldout.txt         held-out text for perplexity (demo, quantisation quality)
data/eval/bench/{ceval,cmmlu,mmlu,financeiq}/
                              sample benchmark items in each benchmark's published layout
"""

import json
import os

from absl import app, flags

from xy_jax.data.synthetic_text import (corpus_lines, eval_prompts, preference_pairs, pretraining_sources,
                                       rl_prompts, sft_conversations)
from xy_jax.eval.sample_data import write_benchmarks

_OUT = flags.DEFINE_string("out", "data", "output directory")


def main(argv):
  del argv
  src = pretraining_sources()
  pre = os.path.join(_OUT.value, "pretrain")
  os.makedirs(os.path.join(pre, "reports"), exist_ok=True)
  with open(os.path.join(pre, "finance.jsonl"), "w", encoding="utf-8") as f:
    for text in src["finance"]:
      f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
  half = len(src["reports"]) // 2
  for i, part in enumerate((src["reports"][:half], src["reports"][half:])):
    with open(os.path.join(pre, "reports", f"part{i}.txt"), "w", encoding="utf-8") as f:
      f.write("\n".join(part) + "\n")
  with open(os.path.join(pre, "general.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(src["general"]) + "\n")
  print(f"wrote {pre}: " + ", ".join(f"{k} {len(v)} docs" for k, v in src.items()))
  for sub, name, records in (("sft", "finance_qa.jsonl", sft_conversations()),
                             ("preference", "pairs.jsonl", preference_pairs()),
                             ("rl", "prompts.jsonl", rl_prompts()), ("eval", "prompts.jsonl", eval_prompts())):
    os.makedirs(os.path.join(_OUT.value, sub), exist_ok=True)
    path = os.path.join(_OUT.value, sub, name)
    with open(path, "w", encoding="utf-8") as f:
      for r in records:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {path}: {len(records)} records")
  heldout = os.path.join(_OUT.value, "eval", "heldout.txt")
  lines = corpus_lines(200, seed=1)  # a seed the training sources do not use
  with open(heldout, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  print(f"wrote {heldout}: {len(lines)} docs")
  bench = os.path.join(_OUT.value, "eval", "bench")
  counts = write_benchmarks(bench)
  print(f"wrote {bench}: " + ", ".join(f"{k} {v} items" for k, v in counts.items()))


if __name__ == "__main__":
  app.run(main)
