"""`tools/demo.py --quick`: the whole pipeline at a smaller scale, every artifact checked."""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.train.train_helpers import ROOT, env

PLOTS = ("pretrain", "sft", "reward", "reward_people", "ppo", "dpo", "win_rates", "win_rates_dpo", "benchmarks", "cpt_stage1", "cpt_stage2")
SUMMARY_KEYS = (
    "perplexity on held-out text: untrained", "perplexity on held-out text: pretrained",
    "pretrain final loss", "sft final answer loss / lm loss", "sft held-out answer loss",
    "reward model held-out accuracy", "ppo reward mean: first / last iterations", "ppo final KL",
    "win+tie PPO vs SFT, overall", "win+tie DPO vs SFT, overall", "dpo held-out rewards/accuracies",
    "benchmark accuracy, dpo (generate)", "greedy tokens identical to transformers",
    "int8 perplexity rise vs bfloat16 (%)", "int4 perplexity rise vs bfloat16 (%)", "self-qa",
    "benchmark accuracy, pretrained (loglik)", "benchmark accuracy, sft (generate)",
    "benchmark accuracy, ppo (generate)", "continued pretraining tokens/char of finance text",
    "continued pretraining nats/char general, finance", "people: preference items / pairs exported",
    "people: RM on their pairs, final loss", "people: GSB win+tie PPO vs SFT, overall",
    "people: GSB items / votes", "cleaning: documents in -> out")


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("demo") / "out")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo.py"), f"--out={out}", "--quick"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
  return out, proc.stdout


@pytest.mark.heavy
def test_demo_writes_every_artifact(demo_out):
  out, stdout = demo_out
  for stage in ("== clean the shipped corpus", "== tokenizer", "== pretrain", "== sft", "== reward", "== ppo", "== dpo", "== win / tie / lose: PPO",
                "== win / tie / lose: DPO", "== people in the loop",
                "== benchmarks", "== export", "== chat through transformers", "== quantise", "== Self-QA",
                "== continued pretraining", "== summary"):
    assert stage in stdout, stage
  for name in PLOTS:
    with open(os.path.join(out, f"{name}.png"), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  for key in SUMMARY_KEYS:
    assert key in summary, key
  assert summary["greedy tokens identical to transformers"] is True
  assert summary["perplexity on held-out text: pretrained"] < summary["perplexity on held-out text: untrained"]
  assert 0.0 <= summary["reward model held-out accuracy"] <= 1.0
  assert abs(summary["int8 perplexity rise vs bfloat16 (%)"]) < 1.0
  assert os.path.isfile(os.path.join(out, "tokenizer.model"))
  assert os.path.isfile(os.path.join(out, "self_qa.jsonl"))
  for d in ("pretrain", "sft", "reward", "reward_people", "ppo", "dpo"):
    assert os.path.isdir(os.path.join(out, d, "checkpoints")), d


@pytest.mark.heavy
def test_demo_exports_load_in_transformers_and_generate(demo_out):
  import torch
  from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
  out, _ = demo_out
  tok = AutoTokenizer.from_pretrained(os.path.join(out, "hf_chat"))
  model = AutoModelForCausalLM.from_pretrained(os.path.join(out, "hf_chat"), dtype=torch.float32).eval()
  ids = tok.apply_chat_template([{"role": "user", "content": "什么是复利？"}], return_tensors="pt",
                                return_dict=True)["input_ids"]
  with torch.no_grad():
    gen = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
  assert gen.shape[1] > ids.shape[1]
  rm = AutoModelForSequenceClassification.from_pretrained(os.path.join(out, "hf_reward")).eval()
  with torch.no_grad():
    assert rm(input_ids=ids).logits.shape == (1, 1)


@pytest.mark.heavy
def test_demo_quantised_checkpoints_load(demo_out):
  from xy_jax.weights.load import load_checkpoint
  from xy_jax.sharding import LogicalSharding, make_mesh
  import jax
  out, _ = demo_out
  sharding = LogicalSharding(make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1]))
  for mode in ("int8", "int4"):
    loaded = load_checkpoint(os.path.join(out, f"chat_{mode}"), sharding)
    assert loaded.cfg.quant == mode and loaded.tokenizer_file


@pytest.mark.heavy
def test_demo_people_in_the_loop(demo_out):
  """Scripted raters voted on SFT candidates through the pages; their pairs trained the RM; their
  GSB votes on PPO vs SFT are reported beside the RM judge."""
  out, stdout = demo_out
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  n_items, n_pairs = map(int, summary["people: preference items / pairs exported"].split(" / "))
  assert 0 < n_pairs <= n_items
  with open(os.path.join(out, "annotate", "pairs.jsonl"), encoding="utf-8") as f:
    pairs = [json.loads(line) for line in f]
  assert len(pairs) == n_pairs
  for p in pairs:
    assert p["chosen"] != p["rejected"] and sum(p["votes"].values()) == 3
  assert math.isfinite(summary["people: RM on their pairs, final loss"])
  gsb_items, gsb_votes = map(int, summary["people: GSB items / votes"].split(" / "))
  assert gsb_items > 0 and gsb_votes == 3 * gsb_items
  assert summary["people: GSB win+tie PPO vs SFT, overall"].endswith("%")
  assert "RM judge win+tie" in stdout
  assert [line for line in stdout.splitlines() if line.startswith("overall ") and "%" in line]


@pytest.mark.heavy
def test_demo_cleans_its_corpus_before_preparing_it(demo_out):
  """Each shipped pretraining source went through the curation pipeline first, every stage at work,
  and the stages that prepare those sources (tokenizer, pretraining, SFT's LM mix, continued
  pretraining) read the cleaned shards only."""
  import glob
  out, stdout = demo_out
  assert stdout.index("== clean the shipped corpus") < stdout.index("== tokenizer") < stdout.index("== pretrain")
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    docs_in, docs_out = map(int, json.load(f)["cleaning: documents in -> out"].split(" -> "))
  reports = {}
  for source in ("finance", "reports", "general"):
    with open(os.path.join(out, "clean", source, "report.json"), encoding="utf-8") as f:
      reports[source] = json.load(f)
    assert glob.glob(os.path.join(out, "clean", source, "*.jsonl.gz")), source
  assert docs_in == sum(r["documents_in"] for r in reports.values()) == 2600
  assert docs_out == sum(r["documents_out"] for r in reports.values()) < docs_in
  steps = reports["finance"]["steps"]
  assert steps["normalize"]["dropped"] and steps["quality"]["dropped"] and steps["exact_dedup"]["dropped"]
  assert steps["near_dedup"]["dropped"] and sum(steps["pii"]["counters"].values()) == 7
  for stage in ("normalize", "quality", "pii", "exact_dedup", "near_dedup"):
    assert f"\n{stage} " in stdout, stage
  assert "near-duplicate clusters (each kept once):" in stdout
  prepared = {}
  for meta in glob.glob(os.path.join(out, "prepared", "*", "*", "meta.json")):
    with open(meta, encoding="utf-8") as f:
      prepared[os.path.relpath(os.path.dirname(meta), os.path.join(out, "prepared"))] = json.load(f)["files"]
  for name in ("pretrain/finance", "pretrain/reports", "pretrain/general", "sft/lm", "cpt_base/general",
               "cpt_stage1/finance", "cpt_stage2/general", "cpt_stage2/finance"):
    assert prepared[name] and all(f.startswith(os.path.join(out, "clean") + os.sep) for f in prepared[name]), name
  shipped = os.path.join(ROOT, "data", "pretrain")
  assert not [n for n, files in prepared.items() if any(f.startswith(shipped) for f in files)]
