"""tools/evaluate.py as a user runs it, and the same evaluation inside a training run."""

import json
import os
import subprocess
import sys

import orbax.checkpoint as ocp

from tests.train.train_helpers import ROOT, env
from xy_jax.eval.prompts import context
from xy_jax.eval.tasks import load_split

BENCH = os.path.join(ROOT, "data", "eval", "bench")


def _evaluate(*args):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "evaluate.py"), *args],
                        capture_output=True, text=True, env=env(), timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def test_generate_mode_answers_are_generate_py_greedy_text(tmp_path, lm_checkpoint):
  out = str(tmp_path / "gen")
  proc = _evaluate("--checkpoint", lm_checkpoint, "--task", "financeiq", "--data_dir",
                   os.path.join(BENCH, "financeiq"), "--mode", "generate", "--limit", "2",
                   "--subjects", "银行从业资格", "--max_new_tokens", "12", "--out", out)
  results = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
  items = [json.loads(l) for l in open(os.path.join(out, "items.jsonl"), encoding="utf-8")]
  assert results["mode"] == "generate" and results["shots"] == 0 and results["items"] == 2
  assert "unparseable" in results and proc.stdout.strip().splitlines()[-1].startswith("accuracy: ")
  assert set(items[0]) == {"task", "subject", "index", "gold", "pred", "text"}
  assert os.path.getsize(os.path.join(out, "accuracy.png")) > 1000
  split = load_split("financeiq", os.path.join(BENCH, "financeiq"), subjects=("银行从业资格",), shots=0, limit=2)
  for item, record in zip(split.items, items):
    ref = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "generate.py"),
                          f"--checkpoint={lm_checkpoint}", "--prompt", context(split, item), "--greedy",
                          "--max_new_tokens=12"], capture_output=True, text=True, env=env(), timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert ref.stdout == record["text"] + "\n"


def test_in_training_accuracy_equals_the_tool_on_that_checkpoint(tmp_path, prepared):
  workdir = str(tmp_path / "run")
  task = {"task": "cmmlu", "data_dir": os.path.join(BENCH, "cmmlu"), "limit": 6}
  cfg = tmp_path / "exp.py"
  cfg.write_text(
      "import importlib.util\n"
      f"spec = importlib.util.spec_from_file_location('tiny', {os.path.join(ROOT, 'configs', 'pretrain_tiny.py')!r})\n"
      "tiny = importlib.util.module_from_spec(spec); spec.loader.exec_module(tiny)\n"
      "def get_config():\n"
      "  c = tiny.get_config()\n"
      f"  c.train.eval_tasks = ({task!r},)\n"
      "  return c\n")
  proc = subprocess.run(
      [sys.executable, "-m", "xy_jax.train", f"--config={cfg}", f"--workdir={workdir}",
       f"--config.data.prepared_dir={prepared}", "--cpu_devices=2", "--config.model.dtype=float32",
       "--config.train.steps=10", "--config.train.eval_every=10", "--config.train.checkpoint_every=10",
       "--config.optim.warmup_steps=2"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "train.eval_tasks: cmmlu test, 18 items in 3 subjects (loglik, 5-shot)" in proc.stderr
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  bench = next(r for r in records if "bench/cmmlu/acc" in r)
  assert bench["step"] == 10 and "bench/cmmlu/acc/Social Science" in bench
  ckpt = os.path.join(workdir, "checkpoints")
  with ocp.CheckpointManager(ckpt) as mngr:
    meta = mngr.restore(10, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  assert meta["last_eval"]["bench/cmmlu/acc"] == bench["bench/cmmlu/acc"]

  out = str(tmp_path / "tool")
  _evaluate("--checkpoint", ckpt, "--task", "cmmlu", "--data_dir", task["data_dir"], "--limit", "6",
            "--dtype", "float32", "--out", out)
  results = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
  assert results["items"] == 18 and results["settings"]["step"] == 10
  assert results["accuracy"] == bench["bench/cmmlu/acc"]
  for category, v in results["per_category"].items():
    assert v["accuracy"] == bench[f"bench/cmmlu/acc/{category}"]
