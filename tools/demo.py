"""End-to-end demo at tiny scale on CPU: what exists of the pipeline, run in order.

  make demo            (or: python tools/demo.py --out demo_out)

Stages: tiny model -> xy_jax checkpoint -> Hugging Face export -> load with transformers ->
greedy generation with both (must agree) -> perplexity on the shipped text.
"""

import math
import os
import shutil
import time

from absl import flags

from xy_jax import checkpoint, cli
from xy_jax.convert.hf import export_hf
from xy_jax.data import synthetic_text
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer
from xy_jax.infer.generate import Generator
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.loading import load_checkpoint
from xy_jax.models.presets import get_preset
from xy_jax.sharding import LogicalSharding, make_mesh
from flax import nnx

flags.DEFINE_string("out", "demo_out", "directory for every artifact (replaced)")
flags.DEFINE_string("preset", "tiny", "model preset")
FLAGS = flags.FLAGS


def stage(name):
  print(f"\n== {name}", flush=True)
  return time.time()


def main(argv):
  del argv
  out = os.path.abspath(FLAGS.out)
  shutil.rmtree(out, ignore_errors=True)
  os.makedirs(out)
  tok = load_tokenizer(None)
  sharding = LogicalSharding(make_mesh({"data": 1, "fsdp": -1, "tensor": 1}))
  cfg = get_preset(FLAGS.preset, pad_token_id=tok.pad_id)

  t = stage(f"init {FLAGS.preset} model ({cfg.param_count() / 1e6:.2f}M params) on {cli.devices_summary()}")
  model = init_model(CausalLM, cfg, sharding, seed=0)
  ckpt = os.path.join(out, "checkpoint")
  checkpoint.save_model(ckpt, nnx.to_pure_dict(nnx.state(model)),
                        {"model": cfg.to_dict(), "kind": "causal_lm", "stage": "init"}, 0, tok.model_file)
  print(f"checkpoint: {ckpt} ({time.time() - t:.1f}s)")

  t = stage("export to Hugging Face")
  loaded = load_checkpoint(ckpt, sharding)
  hf_dir = os.path.join(out, "hf")
  export_hf(loaded.model, loaded.cfg, hf_dir, tokenizer_file=loaded.tokenizer_file, log=print)
  print(f"({time.time() - t:.1f}s)")

  t = stage("load with transformers and generate (greedy, 24 tokens), ours beside it")
  import torch
  from transformers import AutoModelForCausalLM, AutoTokenizer
  hf_tok = AutoTokenizer.from_pretrained(hf_dir)
  hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
  question = "什么是市盈率？"
  prompt = hf_tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False)
  ids = ChatTemplate().encode_prompt(tok, [Message("user", question)])
  with torch.no_grad():
    ref = hf.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False,
                      pad_token_id=tok.pad_id)[0, len(ids):].tolist()
  ours = Generator(loaded.model, tok.eos_id, tok.pad_id).generate(
      [ids], SamplingConfig(greedy=True, max_new_tokens=24))[0].tokens
  if ref and ref[-1] == tok.eos_id:  # transformers keeps the closing EOS; we report it as finished
    ref = ref[:-1]
  print(f"prompt: {prompt!r}")
  print(f"transformers: {hf_tok.decode(ref, skip_special_tokens=True)!r}")
  print(f"xy_jax:       {tok.decode(ours)!r}")
  print(f"same tokens: {ref == ours} (untrained weights: the text is noise until training exists)")

  t = stage("perplexity on the shipped text (200 documents)")
  docs = tok.encode_batch(synthetic_text.corpus_lines(200, seed=1), bos=True)
  nll, n = PerplexityEvaluator(loaded.model, tok.pad_id).evaluate(docs)
  print(f"perplexity: {math.exp(nll / n):.1f} over {n} tokens (uniform would be {cfg.vocab_size})")

  print("\n== summary")
  print(f"checkpoint: {ckpt}\nhf export:  {hf_dir}\ngreedy parity with transformers: {ref == ours}")
  if ref != ours:
    raise SystemExit("demo failed: transformers and xy_jax disagree")


if __name__ == "__main__":
  cli.run(main)
