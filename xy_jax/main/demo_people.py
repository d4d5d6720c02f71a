"""The demo's people in the loop, with scripted raters: candidates from the SFT model, preference
votes through the raters' pages, the reward model trained a few steps on the exported pairs, and
GSB votes on the PPO-vs-SFT answers reported beside the RM judge's win rates.

The raters' oracle is the demo's reward model plus Gaussian noise (half the scores' spread), so
they disagree with it and with each other now and then, as people do.
"""

from __future__ import annotations

import json
import os
import random
import threading

import numpy as np

from xy_jax.annotate import candidates as cand
from xy_jax.annotate import db, export, items, raters, report
from xy_jax.annotate.scripted import vote_all
from xy_jax.annotate.server import make_server
from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.rl.compare import judge_scores

RATERS = ("rater1", "rater2", "rater3")


def _write(path, rows):
  with open(path, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  return path


def _votes(path, kind, rows, score, seed):
  """A fresh database with `rows` imported as `kind` items, every rater voting on every item."""
  db.init(path)
  conn = db.connect(path)
  try:
    tokens = raters.add_raters(conn, list(RATERS))
    items.import_items(conn, _write(path.removesuffix(".sqlite") + "_items.jsonl", rows), kind, len(RATERS))
  finally:
    conn.close()
  spread = float(np.std([score(r["prompt"], r[k]) for r in rows for k in ("answer_a", "answer_b")])) or 1.0
  server = make_server(path, "127.0.0.1", 0, quiet=True)
  thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  try:
    for i, token in enumerate(tokens.values()):
      rng = random.Random(seed + i)

      def choose(prompt, left, right):
        diff = score(prompt, left) - score(prompt, right) + rng.gauss(0, 0.5 * spread)
        close = abs(diff) < 0.1 * spread
        if kind == "gsb":
          return "S" if close else ("G" if diff > 0 else "B")
        return "tie" if close else ("left" if diff > 0 else "right")

      vote_all(server.server_address[1], token, choose)
  finally:
    server.shutdown()
    server.server_close()
    thread.join(10)


def preference_candidates(sft, judge, prompts, tok) -> list[dict]:
  """K = 2 answers per prompt from the SFT model, near-duplicates dropped, scored by the RM."""
  prompts, _ = cand.unique_prompts(prompts)
  gen = Generator(sft.model, tok.eos_id, tok.pad_id)
  sampling = SamplingConfig(temperature=0.7, top_p=0.95, max_new_tokens=16)
  per_prompt = [[] for _ in prompts]
  for seed in (0, 1):
    for i, g in enumerate(gen.generate([p.ids for p in prompts], sampling, seed=seed)):
      per_prompt[i].append((cand.Candidate("SFT", seed, tok.decode(g.tokens)), g.tokens))
  flat = [(p, c, t) for p, cs in zip(prompts, per_prompt) for c, t in cs]
  scores = judge_scores(judge.model, [np.asarray(p.ids + t + [tok.eos_id], np.int32) for p, _, t in flat],
                        tok.pad_id)
  score = {(p.text, c.text): float(s) for (p, c, _), s in zip(flat, scores)}
  rows = []
  for p, cs in zip(prompts, per_prompt):
    kept, _ = cand.distinct([c for c, _ in cs])
    for a, b in cand.pairs(kept):
      rows.append({**cand.item(p.text, p.category, a, b), "score_a": score[(p.text, a.text)],
                   "score_b": score[(p.text, b.text)]})
  return rows


def people_in_the_loop(out, train_stage, sft, judge, prompts, tok, sft_ckpt, ppo_outcomes, judge_rows, summary):
  ann = os.path.join(out, "annotate")
  os.makedirs(ann)
  rows = preference_candidates(sft, judge, prompts, tok)
  score = {(r["prompt"], r[k]): r[f"score_{k[-1]}"] for r in rows for k in ("answer_a", "answer_b")}
  pref = os.path.join(ann, "preference.sqlite")
  _votes(pref, "preference", rows, lambda p, a: score[(p, a)], seed=0)
  pairs = os.path.join(ann, "pairs.jsonl")
  conn = db.connect(pref)
  try:
    counts = export.export_pairs(conn, pairs)
  finally:
    conn.close()
  print(f"{len(rows)} preference items from the SFT model's answers, 3 scripted raters each: "
        f"{counts['pairs']} pairs exported ({counts['ties']} ties dropped) to {pairs}")
  summary["people: preference items / pairs exported"] = f"{len(rows)} / {counts['pairs']}"

  def on_people_pairs(cfg):
    cfg.data.sources = {"people": {"paths": (pairs,), "weight": 1.0, "format": "preference"}}
    cfg.train.steps = 4
    cfg.optim.warmup_steps = 1
    for k in ("log_every", "eval_every", "checkpoint_every"):
      cfg.train[k] = 4
  _, _, metrics = train_stage(out, "reward_people", "reward_tiny.py", sft_ckpt, adjust=on_people_pairs)
  summary["people: RM on their pairs, final loss"] = [r["loss"] for r in metrics if "loss" in r][-1]

  # The judge's outcomes import as they are; answers the model left empty cannot be shown.
  gsb_rows = [o.__dict__ for o in ppo_outcomes if o.answer_a.strip() and o.answer_b.strip()]
  judged = {(o["prompt"], o[k]): o[f"score_{k[-1]}"] for o in gsb_rows for k in ("answer_a", "answer_b")}
  gsb = os.path.join(ann, "gsb.sqlite")
  _votes(gsb, "gsb", [{**o, "model_a": "PPO", "model_b": "SFT"} for o in gsb_rows],
         lambda p, a: judged[(p, a)], seed=100)
  conn = db.connect(gsb)
  try:
    result = report.build(conn)
  finally:
    conn.close()
  judge_by = {r["category"]: r for r in judge_rows}
  print(f"{'PPO vs SFT':<28} {'n':>3}  {'people G / S / B':>22}  win+tie  {'RM judge win+tie':>16}")
  for name, r in [*result["categories"].items(), ("overall", result["overall"])]:
    if r["n"]:
      j = judge_by.get(name)
      print(f"{name:<28} {r['n']:>3}  {r['win']:>6.1%} {r['tie']:>6.1%} {r['lose']:>6.1%}  {r['win_and_tie']:>7.1%}  "
            f"{format(j['win_and_tie'], '.1%') if j else '-':>16}")
  summary["people: GSB win+tie PPO vs SFT, overall"] = f"{result['overall']['win_and_tie']:.1%}"
  summary["people: GSB items / votes"] = f"{result['items']} / {result['votes']}"
