"""tools/extend_vocab.py: a base model and tokenizer trained on general text, extended with pieces
from the finance text; checked against transformers and a numpy transcription of the mean rule."""

import os
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm
import torch

from tests.train.train_helpers import ROOT, env
from xy_jax.data.tokenizer_extension import load_proto

GENERAL = os.path.join(ROOT, "data", "pretrain", "general.txt")
FINANCE = os.path.join(ROOT, "data", "pretrain", "finance.jsonl")
TEXTS = ["市盈率是股票价格与每股收益的比率。", "The river flows east toward the sea.",
         "星河银行第2季度营业收入增长10%，the current ratio rose.", "复利 compound interest"]


def _tool(name, *args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args], capture_output=True,
                        text=True, env=env(), timeout=600)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
  """A random tiny HF Llama whose tokenizer was trained on the general text only."""
  from tests.hf_helpers import make_hf_model
  d = tmp_path_factory.mktemp("base")
  spm.SentencePieceTrainer.train(
      input=GENERAL, model_prefix=str(d / "general"), vocab_size=400, model_type="bpe",
      byte_fallback=True, character_coverage=1.0, add_dummy_prefix=False, normalization_rule_name="identity",
      remove_extra_whitespaces=False, unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2)
  hf = str(d / "hf")
  make_hf_model(hf, seed=5, vocab_size=400)
  os.replace(str(d / "general.model"), os.path.join(hf, "tokenizer.model"))
  return hf


@pytest.fixture(scope="module")
def extended(base, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("ext") / "ckpt")
  proc = _tool("extend_vocab.py", "--hf", base, "--corpus", FINANCE, "--new_pieces", "150",
               "--pad_to_multiple_of", "64", "--out", out)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out, proc.stdout


def test_old_ids_stay_and_new_pieces_follow(base, extended):
  out, stdout = extended
  old, new = load_proto(os.path.join(base, "tokenizer.model")), load_proto(os.path.join(out, "tokenizer.model"))
  assert [(p.piece, p.score, p.type) for p in new.pieces[:len(old.pieces)]] == \
         [(p.piece, p.score, p.type) for p in old.pieces]
  assert new.normalizer_spec == old.normalizer_spec
  added = new.pieces[len(old.pieces):]
  assert len(new.pieces) == 576 and len(added) == 176  # 150 pieces + 26 padding to a multiple of 64
  assert all(p.type == 1 for p in added[:150]) and all(p.type == 5 for p in added[150:])
  assert not {p.piece for p in added[:150]} & {p.piece for p in old.pieces}
  assert "400 -> 576 pieces (150 new, 26 padding)" in stdout
  rows = [l.split() for l in stdout.splitlines() if "finance.jsonl" in l]
  assert float(rows[0][-1]) < float(rows[0][-2])  # fewer tokens per character after


def test_new_rows_follow_the_mean_rule_and_old_rows_are_kept(base, extended):
  from safetensors.numpy import load_file
  from xy_jax.weights.layout import load_meta
  out, _ = extended
  hf_out = out + "_hf"
  proc = _tool("export_hf.py", "--checkpoint", out, "--out", hf_out)
  assert proc.returncode == 0, proc.stderr[-2000:]
  theirs = {}
  for name in os.listdir(base):
    if name.endswith(".safetensors"):
      theirs.update(load_file(os.path.join(base, name)))
  ours = {}
  for name in os.listdir(hf_out):
    if name.endswith(".safetensors"):
      ours.update(load_file(os.path.join(hf_out, name)))
  old_proto = load_proto(os.path.join(base, "tokenizer.model"))
  old_proto.normalizer_spec.add_dummy_prefix = False
  sp = spm.SentencePieceProcessor(model_proto=old_proto.SerializeToString())
  new = load_proto(os.path.join(out, "tokenizer.model")).pieces[400:550]
  for name in ("model.embed_tokens.weight", "lm_head.weight"):
    base_table, table = theirs[name], ours[name]
    np.testing.assert_array_equal(table[:400], base_table)  # bit for bit
    for k, piece in enumerate(new):
      ids = sp.encode(piece.piece.replace("\u2581", " "))
      np.testing.assert_allclose(table[400 + k], base_table[ids].mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(table[550:], np.broadcast_to(base_table.mean(axis=0), (26, table.shape[1])),
                               rtol=1e-6, atol=1e-7)
  for name, value in theirs.items():  # every other tensor unchanged
    if name not in ("model.embed_tokens.weight", "lm_head.weight"):
      np.testing.assert_array_equal(ours[name], value)
  meta = load_meta(out)["vocab_extension"]
  assert (meta["base_size"], meta["new_pieces"], meta["padding"]) == (400, 150, 26)


def test_transformers_reads_the_export_like_sentencepiece(base, extended):
  from transformers import AutoModelForCausalLM, AutoTokenizer
  out, _ = extended
  hf_out = out + "_hf2"
  assert _tool("export_hf.py", "--checkpoint", out, "--out", hf_out).returncode == 0
  tok = AutoTokenizer.from_pretrained(hf_out)
  sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
  for text in TEXTS:
    assert tok(text)["input_ids"] == [1] + sp.encode(text), text
  # On text made only of old pieces, the logits over the old vocabulary are the base model's.
  old = spm.SentencePieceProcessor(model_file=os.path.join(base, "tokenizer.model"))
  ids = torch.tensor([[1] + old.encode("The river flows east toward the sea.")])
  with torch.no_grad():
    a = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)(ids).logits
    b = AutoModelForCausalLM.from_pretrained(hf_out, dtype=torch.float32)(ids).logits
  assert b.shape[-1] == 576
  np.testing.assert_allclose(b[..., :400].numpy(), a.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("args,message", [
    (["--corpus", "nope.txt", "--new_pieces", "10"], "--corpus='nope.txt': no such file"),
    (["--corpus", "EMPTY", "--new_pieces", "10"], "--corpus: no documents in"),
    (["--corpus", FINANCE, "--vocab_size", "300"], "--vocab_size=300: the base tokenizer already has 400"),
    (["--corpus", FINANCE, "--new_pieces", "10", "--tokenizerless"], "no tokenizer.model beside the model"),
    (["--corpus", "NOTHING_NEW", "--new_pieces", "10"], "yields no piece the base tokenizer lacks"),
])
def test_bad_input_is_one_line_and_writes_nothing(base, tmp_path, args, message):
  import shutil
  hf = base
  if "--tokenizerless" in args:
    args = [a for a in args if a != "--tokenizerless"]
    hf = str(tmp_path / "hf")
    shutil.copytree(base, hf)
    os.remove(os.path.join(hf, "tokenizer.model"))
  if "EMPTY" in args:
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    args = [str(tmp_path / "empty.txt") if a == "EMPTY" else a for a in args]
  if "NOTHING_NEW" in args:  # one character the base already has as a piece
    (tmp_path / "a.txt").write_text("a\n", encoding="utf-8")
    args = [str(tmp_path / "a.txt") if a == "NOTHING_NEW" else a for a in args]
  out = str(tmp_path / "out")
  proc = _tool("extend_vocab.py", "--hf", hf, "--out", out, *args)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert message in proc.stderr.strip().splitlines()[-1]
  assert not os.path.exists(out) and not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_a_reward_model_is_refused(tmp_path, one_device_sharding):
  from flax import nnx
  from xy_jax.weights import layout
  from xy_jax.data.tokenizer import DEFAULT_ASSET
  from xy_jax.models.factory import init_model
  from xy_jax.models.presets import get_preset
  from xy_jax.models.reward import RewardModel
  cfg = get_preset("tiny")
  rm = str(tmp_path / "rm")
  layout.save_model(rm, nnx.to_pure_dict(nnx.state(init_model(RewardModel, cfg, one_device_sharding))),
                        {"model": cfg.to_dict(), "kind": "reward"}, 0, DEFAULT_ASSET)
  out = str(tmp_path / "out")
  proc = _tool("extend_vocab.py", "--checkpoint", rm, "--corpus", FINANCE, "--new_pieces", "10", "--out", out)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert "a reward model cannot take new vocabulary rows" in last and not os.path.exists(out)


def _small_corpus(tmp_path, n=5):
  with open(FINANCE, encoding="utf-8") as f:
    lines = [next(f) for _ in range(n)]
  path = tmp_path / "small.jsonl"
  path.write_text("".join(lines), encoding="utf-8")
  return str(path)


def test_a_small_corpus_extends_and_overwrite_replaces_an_existing_out(base, tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (out / "old.txt").write_text("keep me", encoding="utf-8")
  args = ["--hf", base, "--corpus", _small_corpus(tmp_path), "--new_pieces", "20", "--out", str(out)]
  proc = _tool("extend_vocab.py", *args)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].endswith("already exists (pass --overwrite to replace it)")
  assert (out / "old.txt").exists()

  proc = _tool("extend_vocab.py", *args, "--overwrite")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert not (out / "old.txt").exists()
  assert len(load_proto(str(out / "tokenizer.model")).pieces) == 420
  # Five documents are too few to hold one out: tokens/char is measured on them, and says so.
  row = next(l for l in proc.stdout.splitlines() if "small.jsonl (in-sample)" in l).split()
  assert float(row[-1]) < float(row[-2])
  assert "(in-sample: a file of fewer than 20 documents holds none out" in proc.stdout


def test_a_lora_checkpoint_is_merged_into_a_plain_model(base, tmp_path, one_device_sharding):
  import jax
  from flax import nnx
  from xy_jax.weights import layout, select
  from xy_jax.convert.hf import load_hf
  from xy_jax.weights.load import load_checkpoint
  from xy_jax.weights.lora import with_adapters
  from xy_jax.models.factory import model_from_values
  from xy_jax.models.llama import CausalLM
  cfg, plain = load_hf(base, one_device_sharding, log=lambda _: None, dtype="float32")
  cfg = cfg.replace(lora_rank=4, lora_alpha=8.0, lora_targets="q_proj|v_proj|lm_head")
  params = with_adapters(CausalLM, cfg, nnx.to_pure_dict(nnx.state(plain)), one_device_sharding, seed=3)
  rng = np.random.default_rng(0)  # a fresh B is zero: make every adapter change the logits
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: rng.normal(0, 0.05, x.shape).astype(np.float32) if str(p[-1].key) == "lora_b" else x,
      params)
  pattern = r"\.lora_[ab]$"
  lora = str(tmp_path / "lora")  # as a LoRA run writes it: the adapters, and where the base is
  layout.save_model(lora, select.params_matching(params, pattern),
                        {"model": cfg.to_dict(), "kind": "causal_lm", "lora_base": {"hf": base},
                         "trainable": pattern}, 0, os.path.join(base, "tokenizer.model"))
  out = str(tmp_path / "out")
  proc = _tool("extend_vocab.py", "--checkpoint", lora, "--corpus", _small_corpus(tmp_path, 40),
               "--new_pieces", "20", "--out", out)
  assert proc.returncode == 0, proc.stderr[-2000:]
  meta = layout.load_meta(out)
  assert meta["model"]["lora_rank"] == 0 and not meta.get("lora_base")
  assert "folded the LoRA adapters (rank 4) into the weights" in proc.stderr
  extended = load_checkpoint(out, one_device_sharding, dtype="float32")
  old = spm.SentencePieceProcessor(model_file=os.path.join(base, "tokenizer.model"))
  ids = np.asarray([[1] + old.encode("The river flows east toward the sea.")])
  logits = jax.jit(lambda m, t: m(t)[0])
  want = np.asarray(logits(model_from_values(CausalLM, cfg, one_device_sharding, params), ids))
  got = np.asarray(logits(extended.model, ids))
  assert got.shape[-1] == 420
  np.testing.assert_allclose(got[..., :400], want, atol=1e-5, rtol=0)
