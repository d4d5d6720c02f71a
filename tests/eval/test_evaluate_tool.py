"""tools/evaluate.py as a user runs it, and the same evaluation inside a training run."""

import json
import os
import subprocess
import sys

import orbax.checkpoint as ocp
import pytest

from tests.train.train_helpers import ROOT, env
from xy_jax.eval.prompts import context
from xy_jax.eval.tasks import load_split

BENCH = os.path.join(ROOT, "data", "eval", "bench")


def _evaluate(*args, code=0):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "evaluate.py"), *args],
                        capture_output=True, text=True, env=env(), timeout=600)
  assert proc.returncode == code, proc.stderr[-3000:]
  return proc


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
  from tests.hf_helpers import make_hf_model
  path = str(tmp_path_factory.mktemp("tiny_hf"))
  make_hf_model(path)
  return path


def _cmmlu_dir(root, test_rows, encoding="utf-8"):
  """A CMMLU folder with one subject: `test_rows` and five dev rows."""
  header = ",Question,A,B,C,D,Answer\n"
  for split, rows in (("test", test_rows), ("dev", [f"{i},问{i},甲,乙,丙,丁,A\n" for i in range(5)])):
    os.makedirs(os.path.join(root, split))
    with open(os.path.join(root, split, "economics.csv"), "w", encoding=encoding) as f:
      f.write(header + "".join(rows))
  return os.path.join(root, "test", "economics.csv")


ROWS = [f"{i},问题{i},甲,乙,丙,丁,{'ABCD'[i % 4]}\n" for i in range(24)]


def test_a_stray_quote_in_a_csv_costs_one_row_not_the_rest_of_the_file(tmp_path, tiny_hf):
  path = _cmmlu_dir(str(tmp_path / "cmmlu"), ROWS[:2] + ['2,"问题2,甲,乙,丙,丁,C\n'] + ROWS[3:])
  out = str(tmp_path / "out")
  proc = _evaluate("--hf", tiny_hf, "--task", "cmmlu", "--data_dir", str(tmp_path / "cmmlu"), "--out", out)
  assert f'skipped {path}:4: unbalanced quote: the field its " opens runs over the rows after it' in proc.stderr
  results = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
  assert results["items"] == 23 and sum(results["skipped"].values()) == 1
  assert results["per_subject"]["economics"]["n"] == 23 and ", 1 skipped" in proc.stdout


def test_a_gbk_csv_is_named_with_its_line_before_the_model_loads(tmp_path):
  """30 skipped: the 24 test rows, the 5 dev rows and then the subject (no dev rows for its shots)."""
  path = _cmmlu_dir(str(tmp_path / "cmmlu"), ROWS, encoding="gbk")
  proc = _evaluate("--hf", str(tmp_path / "no_model"), "--task", "cmmlu", "--data_dir", str(tmp_path / "cmmlu"),
                   "--out", str(tmp_path / "out"), code=2)
  assert proc.stderr.strip().splitlines()[-1] == (
      f"error: --data_dir={tmp_path / 'cmmlu'}: no cmmlu item to score; 30 skipped, e.g. {path}:2: not UTF-8 "
      "(byte 0xce); convert it (iconv -f GBK -t UTF-8) or, if every file is GBK, set --encoding=gbk")


def test_out_on_an_existing_file_is_refused_before_the_model_loads(tmp_path):
  (tmp_path / "results").write_text("earlier results\n")
  proc = _evaluate("--hf", str(tmp_path / "no_model"), "--task", "cmmlu", "--data_dir", os.path.join(BENCH, "cmmlu"),
                   "--out", str(tmp_path / "results"), code=2)
  assert proc.stderr.strip().splitlines()[-1].startswith(f"error: --out={tmp_path / 'results'}: a file is there")
  assert (tmp_path / "results").read_text() == "earlier results\n"


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
