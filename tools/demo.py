"""End-to-end demo at tiny scale on CPU: what exists of the pipeline, run in order.

  make demo            (or: python tools/demo.py --out demo_out)

Stages: prepare the shipped corpus -> bucketed pretraining (tiny config) -> Hugging Face export ->
load with transformers and generate beside our generator (the tokens must agree) -> perplexity
before and after -> PNG of the loss curves and bucket mix -> summary.
"""

import math
import os
import shutil
import time

from absl import flags

from xy_jax import cli
from xy_jax.config import validate
from xy_jax.convert.hf import export_hf
from xy_jax.data import synthetic_text
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer
from xy_jax.infer.generate import Generator
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.loading import load_checkpoint
from xy_jax.plots import plot_training
from xy_jax.sharding import LogicalSharding, make_mesh
from xy_jax.train.loop import run

flags.DEFINE_string("out", "demo_out", "directory for every artifact (replaced)")
flags.DEFINE_string("config", "configs/pretrain_tiny.py", "pretraining config (a bigger one on GPU/TPU)")
flags.DEFINE_integer("steps", None, "override train.steps")
FLAGS = flags.FLAGS


def stage(name):
  print(f"\n== {name}", flush=True)
  return time.time()


def load_config(path):
  import importlib.util
  spec = importlib.util.spec_from_file_location("demo_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def perplexity(model, tok, docs):
  nll, n = PerplexityEvaluator(model, tok.pad_id).evaluate(docs)
  return math.exp(nll / n)


def main(argv):
  del argv
  out = os.path.abspath(FLAGS.out)
  shutil.rmtree(out, ignore_errors=True)
  os.makedirs(out)
  tok = load_tokenizer(None)
  held_out = tok.encode_batch(synthetic_text.corpus_lines(200, seed=1), bos=True)
  summary = {}

  cfg = load_config(FLAGS.config)
  cfg.data.prepared_dir = os.path.join(out, "prepared")
  if FLAGS.steps:
    cfg.train.steps = FLAGS.steps
  sharding = LogicalSharding(make_mesh(dict(cfg.mesh)))
  untrained = init_model(CausalLM, validate(cfg), sharding, seed=cfg.seed)
  summary["perplexity before"] = perplexity(untrained, tok, held_out)

  t = stage(f"pretrain ({FLAGS.config}, {cfg.train.steps} steps, buckets {tuple(cfg.data.buckets)}) "
            f"on {cli.devices_summary()}")
  workdir = os.path.join(out, "pretrain")
  result = run(cfg, workdir, log=print)
  summary["pretrain final loss"] = result.last_loss
  plot_training(os.path.join(workdir, "metrics.jsonl"), os.path.join(out, "pretrain.png"), "pretraining")
  print(f"({time.time() - t:.1f}s) metrics: {workdir}/metrics.jsonl, plot: {out}/pretrain.png")

  t = stage("export to Hugging Face")
  loaded = load_checkpoint(os.path.join(workdir, "checkpoints"), sharding, dtype="float32")
  hf_dir = os.path.join(out, "hf")
  export_hf(loaded.model, loaded.cfg, hf_dir, tokenizer_file=loaded.tokenizer_file, log=print)
  summary["perplexity after"] = perplexity(loaded.model, tok, held_out)

  t = stage("load with transformers, generate greedily beside xy_jax")
  import torch
  from transformers import AutoModelForCausalLM, AutoTokenizer
  hf_tok = AutoTokenizer.from_pretrained(hf_dir)
  hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
  gen = Generator(loaded.model, tok.eos_id, tok.pad_id)
  agree = True
  for prompt in ("市盈率是指", "The current ratio is"):
    ids = tok.encode(prompt, bos=True)
    with torch.no_grad():
      ref = hf.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False,
                        pad_token_id=tok.pad_id)[0, len(ids):].tolist()
    if ref and ref[-1] == tok.eos_id:  # transformers keeps the closing EOS
      ref = ref[:-1]
    ours = gen.generate([ids], SamplingConfig(greedy=True, max_new_tokens=24))[0].tokens
    agree &= ref == ours
    print(f"{prompt!r} -> transformers: {hf_tok.decode(ref, skip_special_tokens=True)!r}")
    print(f"{' ' * len(repr(prompt))}    xy_jax:       {tok.decode(ours)!r}")
  chat = ChatTemplate().encode_prompt(tok, [Message("user", "什么是复利？")])
  print(f"chat prompt (the XuanYuan template): {ChatTemplate().render([Message('user', '什么是复利？')])!r}")
  print(f"  -> {tok.decode(gen.generate([chat], SamplingConfig(greedy=True, max_new_tokens=32))[0].tokens)!r}")
  summary["greedy tokens identical to transformers"] = agree

  print("\n== summary")
  print(f"{'output:':<42}{out}")
  print(f"{'checkpoints:':<42}{workdir}/checkpoints")
  print(f"{'hf export:':<42}{hf_dir}")
  print(f"{'loss curves and bucket mix:':<42}{out}/pretrain.png")
  for k, v in summary.items():
    print(f"{k + ':':<42}{v:.3f}" if isinstance(v, float) else f"{k + ':':<42}{v}")
  if not agree:
    raise SystemExit("demo failed: transformers and xy_jax disagree")


if __name__ == "__main__":
  cli.run(main)
