"""The command-line tools, run as a user runs them (subprocesses), including bad input."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from tests.hf_helpers import make_hf_model
from tests.train.train_helpers import with_file_size_limit
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}


def run_tool(name, *args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args],
                        capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("hf"))
  make_hf_model(d, seed=4)
  return d


def _one_line_error(proc):
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ")
  return last


def _copy(src, dst):
  import shutil
  shutil.copytree(src, dst)
  return dst


def test_import_missing_config(tmp_path, hf_dir):
  bad = _copy(hf_dir, str(tmp_path / "bad"))
  os.remove(os.path.join(bad, "config.json"))
  out = str(tmp_path / "out")
  err = _one_line_error(run_tool("import_hf.py", "--hf", bad, "--out", out))
  assert "config.json: not found" in err and not os.path.exists(out)


def test_import_malformed_config(tmp_path, hf_dir):
  bad = _copy(hf_dir, str(tmp_path / "bad"))
  with open(os.path.join(bad, "config.json"), "w") as f:
    f.write('{\n  "hidden_size": 64,\n  "vocab_size": ,\n}\n')
  out = str(tmp_path / "out")
  err = _one_line_error(run_tool("import_hf.py", "--hf", bad, "--out", out))
  assert "config.json:3:" in err and "malformed JSON" in err and not os.path.exists(out)


def test_import_missing_shard(tmp_path, hf_dir):
  bad = _copy(hf_dir, str(tmp_path / "bad"))
  shards = sorted(f for f in os.listdir(bad) if f.endswith(".safetensors"))
  os.remove(os.path.join(bad, shards[1]))
  out = str(tmp_path / "out")
  err = _one_line_error(run_tool("import_hf.py", "--hf", bad, "--out", out))
  assert shards[1] in err and "missing shard" in err and not os.path.exists(out)


def test_import_wrong_shape(tmp_path, hf_dir):
  bad = _copy(hf_dir, str(tmp_path / "bad"))
  index = json.load(open(os.path.join(bad, "model.safetensors.index.json")))
  name = "model.layers.1.self_attn.k_proj.weight"
  shard = os.path.join(bad, index["weight_map"][name])
  from safetensors import safe_open
  with safe_open(shard, "numpy") as f:
    tensors = {k: f.get_tensor(k) for k in f.keys()}
  tensors[name] = np.zeros((16, 64), np.float32)
  save_file(tensors, shard, metadata={"format": "pt"})
  out = str(tmp_path / "out")
  err = _one_line_error(run_tool("import_hf.py", "--hf", bad, "--out", out))
  assert name in err and "[16, 64]" in err and "[32, 64]" in err and os.path.basename(shard) in err
  assert not os.path.exists(out) and not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_import_then_export_and_existing_out(tmp_path, hf_dir):
  ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "hf_out")
  proc = run_tool("import_hf.py", "--hf", hf_dir, "--out", ckpt)
  assert proc.returncode == 0, proc.stderr
  proc = run_tool("export_hf.py", "--checkpoint", ckpt, "--out", out)
  assert proc.returncode == 0, proc.stderr
  files = set(os.listdir(out))
  assert {"config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.model",
          "tokenizer_config.json", "special_tokens_map.json"} <= files
  gen = json.load(open(os.path.join(out, "generation_config.json")))
  assert (gen["temperature"], gen["top_p"], gen["max_new_tokens"]) == (0.7, 0.95, 256)
  err = _one_line_error(run_tool("export_hf.py", "--checkpoint", ckpt, "--out", out))
  assert "already exists" in err
  err = _one_line_error(run_tool("export_hf.py", "--checkpoint", str(tmp_path / "nope"), "--out",
                                 str(tmp_path / "x")))
  assert "nope: checkpoint directory not found" in err


def test_generate_prints_only_the_answer(hf_dir):
  proc = run_tool("generate.py", "--hf", hf_dir, "--prompt", "什么是市盈率？", "--greedy",
                  "--max_new_tokens", "16")
  assert proc.returncode == 0, proc.stderr
  # Reference: transformers' greedy generate on the card's prompt format.
  from transformers import AutoModelForCausalLM
  tok = load_tokenizer(hf_dir)
  ids = ChatTemplate().encode_prompt(tok, [Message("user", "什么是市盈率？")])
  hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
  with torch.no_grad():
    ref = hf.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False,
                      eos_token_id=tok.eos_id, pad_token_id=tok.pad_id)[0, len(ids):].tolist()
  assert proc.stdout == tok.decode(ref) + "\n"


def test_eval_ppl_matches_transformers(tmp_path, hf_dir):
  docs = ["市盈率是指股票价格与每股收益的比率。", "The river flows east toward the sea.", "复利",
          "本金1000元，年利率3%，按复利计算2年后本息合计约为1060.90元。"]
  jsonl = tmp_path / "docs.jsonl"
  lines = [json.dumps({"text": d}, ensure_ascii=False) for d in docs]
  jsonl.write_text("\n".join(lines[:2] + ["{not json", ""] + lines[2:]) + "\n", encoding="utf-8")
  proc = run_tool("eval_ppl.py", "--hf", hf_dir, "--text", str(jsonl), "--batch_size", "3")
  assert proc.returncode == 0, proc.stderr
  assert "docs.jsonl:3: malformed JSON" in proc.stderr
  got = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())

  from transformers import AutoModelForCausalLM
  tok = load_tokenizer(hf_dir)
  hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
  nll, count = 0.0, 0
  for d in docs:
    ids = torch.tensor([tok.encode(d, bos=True)])
    with torch.no_grad():
      logits = hf(ids).logits[0, :-1]
    nll += torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
    count += ids.shape[1] - 1
  assert int(got["tokens"]) == count
  assert float(got["perplexity"]) == pytest.approx(math.exp(nll / count), rel=1e-4)


def test_import_truncated_safetensors_and_existing_out_checked_first(tmp_path, hf_dir):
  bad = _copy(hf_dir, str(tmp_path / "bad"))
  shard = os.path.join(bad, sorted(f for f in os.listdir(bad) if f.endswith(".safetensors"))[0])
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) // 2)
  out = str(tmp_path / "out")
  err = _one_line_error(run_tool("import_hf.py", "--hf", bad, "--out", out))
  assert err.startswith(f"error: {shard}: unreadable safetensors file") and not os.path.exists(out)
  os.makedirs(out)  # an existing --out is refused before a single tensor is read
  err = _one_line_error(run_tool("import_hf.py", "--hf", bad, "--out", out))
  assert "already exists" in err


def test_export_without_a_tokenizer_writes_weights_and_warns(tmp_path, hf_dir):
  src = _copy(hf_dir, str(tmp_path / "rm"))
  os.remove(os.path.join(src, "tokenizer.model"))  # as reward models are often published
  ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "out")
  assert run_tool("import_hf.py", "--hf", src, "--out", ckpt).returncode == 0
  proc = run_tool("export_hf.py", "--checkpoint", ckpt, "--out", out)
  assert proc.returncode == 0, proc.stderr
  assert "warning: no tokenizer.model for this model" in proc.stderr
  files = set(os.listdir(out))
  assert {"config.json", "model.safetensors.index.json"} <= files and "tokenizer.model" not in files

  full = str(tmp_path / "full")
  cmd = [sys.executable, os.path.join(ROOT, "tools", "export_hf.py"), "--checkpoint", ckpt, "--out", full]
  proc = subprocess.run(with_file_size_limit(cmd, 100), capture_output=True, text=True, env=ENV,
                        timeout=300)
  err = _one_line_error(proc)
  assert "safetensors: File too large" in err and not os.path.exists(full)
  assert not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_eval_ppl_reads_a_directory(tmp_path, hf_dir):
  d = tmp_path / "texts"
  (d / "sub").mkdir(parents=True)
  (d / "a.txt").write_text("市盈率是指股票价格与每股收益的比率。\n", encoding="utf-8")
  (d / "sub" / "b.jsonl").write_text(json.dumps({"text": "The river flows east."}) + "\n")
  proc = run_tool("eval_ppl.py", "--hf", hf_dir, "--text", str(d))
  assert proc.returncode == 0, proc.stderr
  assert "documents: 2 (skipped 0)" in proc.stdout


def test_generate_refuses_a_prompt_that_is_not_utf8(hf_dir):
  gbk = "什么是市盈率".encode("gbk")
  proc = subprocess.run([sys.executable.encode(), os.path.join(ROOT, "tools", "generate.py").encode(),
                         b"--hf", hf_dir.encode(), b"--prompt", gbk], capture_output=True, env=ENV,
                        timeout=300)
  proc.stderr = proc.stderr.decode("utf-8", "replace")
  err = _one_line_error(proc)
  assert "--prompt is not valid UTF-8" in err


def test_import_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, hf_dir):
  out = str(tmp_path / "ckpt")
  cmd = [sys.executable, os.path.join(ROOT, "tools", "import_hf.py"), "--hf", hf_dir, "--out", out]
  err = _one_line_error(subprocess.run(with_file_size_limit(cmd, 100), capture_output=True, text=True,
                                       env=ENV, timeout=300))
  assert err.startswith(f"error: writing {out}.partial-") and "File too large" in err
  assert os.listdir(tmp_path) == []
