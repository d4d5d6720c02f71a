"""SFT and reward modelling through `python -m xy_jax.train`, on the shipped data."""

import json
import os
import subprocess
import sys

import pytest

from tests.train.train_helpers import ROOT, env, losses


def _train(config, workdir, *overrides, devices=2):
  proc = subprocess.run(
      [sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/{config}",
       f"--workdir={workdir}", f"--cpu_devices={devices}", *overrides],
      capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sft"))
  proc = _train("sft_tiny.py", workdir, f"--config.data.prepared_dir={workdir}/data")
  return workdir, proc


def test_sft_lowers_held_out_answer_loss_and_reports_both_losses(sft_run):
  workdir, proc = sft_run
  records = _records(workdir)
  steps = [r for r in records if "loss" in r]
  assert "sft_loss" in steps[-1] and "lm_loss" in steps[-1]
  evals = [r for r in records if "eval/loss/sft" in r]
  assert len(evals) >= 2
  first, last = evals[0]["eval/loss/sft"], evals[-1]["eval/loss/sft"]
  assert last < first and last < 1.5, (first, last)


def test_after_sft_greedy_generation_reproduces_a_training_answer(sft_run):
  workdir, _ = sft_run
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "generate.py"),
       f"--checkpoint={workdir}/checkpoints", "--prompt=什么是汇率？", "--greedy",
       "--max_new_tokens=24"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  # Training answer: "汇率是指一种货币兑换另一种货币的比率。"
  assert proc.stdout.startswith("汇率是指"), proc.stdout


def test_reward_model_from_the_sft_body_learns_the_preference(tmp_path, sft_run):
  sft_dir, _ = sft_run
  workdir = str(tmp_path / "rm")
  proc = _train("reward_tiny.py", workdir, f"--config.init_from_checkpoint={sft_dir}/checkpoints")
  assert "score: not in" in proc.stderr and "freshly initialised" in proc.stderr
  assert "lm_head: from" in proc.stderr
  evals = [r for r in _records(workdir) if "eval/accuracy/preference" in r]
  # Held-out pairs include right answers to a different question, which the 0.9M-parameter model
  # gets wrong about a third of the time (measured 0.83-0.86 overall; chance is 0.5).
  assert evals[-1]["eval/accuracy/preference"] >= 0.75
  steps = [r for r in _records(workdir) if "loss" in r]
  assert {"accuracy", "margin", "chosen_score", "rejected_score"} <= set(steps[-1])

  out = str(tmp_path / "hf_rm")
  exp = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_hf.py"),
                        f"--checkpoint={workdir}/checkpoints", f"--out={out}"],
                       capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
  assert exp.returncode == 0, exp.stderr[-2000:]
  assert json.load(open(os.path.join(out, "config.json")))["architectures"] == [
      "LlamaForSequenceClassification"]


def test_bad_sft_records_do_not_stop_a_run(tmp_path):
  data = tmp_path / "bad.jsonl"
  good = json.dumps({"prompt": "什么是汇率？", "response": "汇率是指货币的比价。"}, ensure_ascii=False)
  data.write_text("\n".join([good] * 30 + ['{"conversations": []}', "{oops",
                                           json.dumps({"prompt": "q", "response": ""})]) + "\n",
                  encoding="utf-8")
  workdir = str(tmp_path / "run")
  proc = _train("sft_tiny.py", workdir, f"--config.data.prepared_dir={workdir}/data",
                f"--config.data.sources.sft.paths={data}", "--config.train.steps=4",
                "--config.optim.warmup_steps=1",
                "--config.train.eval_every=4", "--config.train.checkpoint_every=4")
  assert f"{data}:31: \"conversations\" is not a non-empty list" in proc.stderr
  assert f"{data}:32: malformed JSON" in proc.stderr
  assert f"{data}:33: empty assistant answer" in proc.stderr


def test_dpo_from_the_sft_model_learns_the_preference_and_resumes_exactly(tmp_path, sft_run):
  sft_dir, _ = sft_run
  workdir = str(tmp_path / "dpo")
  proc = _train("dpo_tiny.py", workdir, f"--config.init_from_checkpoint={sft_dir}/checkpoints")
  assert "dpo reference:" in proc.stderr
  evals = [r for r in _records(workdir) if "eval/rewards/accuracies/preference" in r]
  # Held-out pairs include right answers to another question (see the reward-model test above);
  # measured 0.81-0.83 from step 40 on (chance 0.5; the SFT model itself scores 0: rewards tie).
  assert evals[-1]["eval/rewards/accuracies/preference"] > 0.8
  assert evals[-1]["eval/rewards/margins/preference"] > 1.0
  steps = [r for r in _records(workdir) if "loss" in r]
  assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
          "logps/rejected"} <= set(steps[-1])

  common = (f"--config.init_from_checkpoint={sft_dir}/checkpoints", "--config.optim.schedule=constant",
            "--config.train.checkpoint_every=10", "--config.train.eval_every=1000")
  straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
  _train("dpo_tiny.py", straight, *common, "--config.train.steps=30")
  _train("dpo_tiny.py", split, *common, "--config.train.steps=20")
  assert "resumed from" in _train("dpo_tiny.py", split, *common, "--config.train.steps=30").stderr
  assert losses(straight) == losses(split) and sorted(losses(split)) == list(range(1, 31))
