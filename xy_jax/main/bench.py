"""Side-by-side speed: our jitted train step and KV-cache generation against Hugging Face
transformers + PyTorch on the same model, batch and sequence, in one process on one machine.

  python tools/bench.py [--preset small] [--batch 8] [--seq 256] [--steps 5] [--new_tokens 128]
  python tools/bench.py --preset small --dtype bfloat16      # on a GPU: bf16, torch with sdpa
  python tools/bench.py --quant int8,int4                    # also quantised generation
  python tools/bench.py --eval [--eval_task cmmlu --eval_data_dir DIR]  # benchmark scoring vs lm-eval
  python tools/bench.py --llamacpp ~/llama.cpp               # CPU decoding vs llama.cpp (batch 1)

Prints tokens/s for each side and ends with `train ratio: X` and `generate ratio: Y` (ours / peer).
`--eval` instead times benchmark scoring: tools/evaluate.py's evaluator against
lm-evaluation-harness's HF backend, on the same exported model and the same items (5-shot
log-likelihood), and ends with `eval ratio: X` (items/s, ours / lm-eval).
`--llamacpp DIR` (a llama.cpp checkout with a build under it) instead converts our HF export with
llama.cpp's own `convert_hf_to_gguf.py` to float32, bfloat16 and q8_0 GGUF files and prints
llama-bench's batch-1 decode tokens/s for each beside our generator's, ending with
`llamacpp ratio: X` (ours / llama.cpp float32).
Both sides start from the same weights (ours exported to HF), use AdamW with the same settings,
and are timed after a warm-up step (compilation excluded on our side, as torch has none).

Precision is matched: with `--dtype float32` everything is float32; with `--dtype bfloat16` both
sides train mixed precision (float32 parameters and optimizer state; ours computes in bfloat16,
torch under `torch.autocast(bfloat16)`) and both generate with bfloat16 weights.
"""

import os
import tempfile
import time

import numpy as np
from absl import flags

from xy_jax import cli

flags.DEFINE_string("preset", "small", "model preset")
flags.DEFINE_integer("batch", 8, "rows per step / prompts per generate call")
flags.DEFINE_integer("seq", 256, "training sequence length")
flags.DEFINE_integer("steps", 5, "timed training steps per side")
flags.DEFINE_integer("prompt_len", 32, "prompt tokens for generation")
flags.DEFINE_integer("new_tokens", 128, "generated tokens per prompt")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "compute dtype on both sides")
flags.DEFINE_list("quant", [], "also time generation with these weight formats (int8, int4)")
flags.DEFINE_integer("group_size", 128, "int4 group size")
flags.DEFINE_bool("eval", False, "time benchmark scoring against lm-evaluation-harness instead")
flags.DEFINE_enum("eval_task", "cmmlu", ["ceval", "cmmlu"], "benchmark for --eval (lm-eval templates)")
flags.DEFINE_string("eval_data_dir", None, "its files (default: the shipped sample)")
flags.DEFINE_integer("eval_batch", 8, "lm-eval batch size (ours batches by --batch_tokens)")
flags.DEFINE_integer("batch_tokens", 16384, "our scoring batch, in tokens")
flags.DEFINE_string("llamacpp", None, "a llama.cpp checkout with a build: time CPU decoding against it")
FLAGS = flags.FLAGS


def bench_ours(cfg, tokens, prompts):
  from xy_jax.plan.timing import train_tokens_per_s
  model, train_tps = train_tokens_per_s(cfg, tokens, FLAGS.steps)
  return model, train_tps, generate_tokens_per_s(model, prompts)


def serving_copy(model):
  """The model with bfloat16 weights (what the peer generates with under --dtype bfloat16)."""
  import jax.numpy as jnp
  from flax import nnx
  from xy_jax.weights.cast import cast_floats
  graphdef, state = nnx.split(model)
  return nnx.merge(graphdef, cast_floats(state, jnp.bfloat16))


def generate_tokens_per_s(model, prompts) -> float:
  from xy_jax.plan import timing as speed
  if FLAGS.dtype == "bfloat16":
    model = serving_copy(model)
  return speed.generate_tokens_per_s(model, prompts, FLAGS.new_tokens)


def bench_quantised(model, cfg, prompts, float_tps):
  """Weight memory and generation speed of int8 / int4 copies beside the float model."""
  from xy_jax.quant.quantize_model import param_bytes, quantize_model
  from xy_jax.sharding import LogicalSharding
  base = param_bytes(model)
  print(f"weights {cfg.param_dtype}: {base / 2**20:,.1f} MiB, generate {float_tps:,.0f} tokens/s")
  for mode in FLAGS.quant:
    q = quantize_model(model, cfg, mode, LogicalSharding(), FLAGS.group_size)
    tps = generate_tokens_per_s(q.model, prompts)
    size = param_bytes(q.model)
    print(f"weights {mode}: {size / 2**20:,.1f} MiB ({size / base:.2f}x), generate {tps:,.0f} tokens/s "
          f"({tps / float_tps:.2f}x the float model)")


def bench_torch(hf_dir, tokens, prompts):
  from xy_jax.peers import torch_peer
  mixed = FLAGS.dtype == "bfloat16"
  return (torch_peer.train_tokens_per_s(hf_dir, tokens, FLAGS.steps, mixed),
          torch_peer.generate_tokens_per_s(hf_dir, prompts, FLAGS.new_tokens, bf16=mixed))


def bench_eval(cfg):
  """Items/s of our evaluator and of lm-eval's HF backend on one exported model and split."""
  import jax
  from flax import nnx
  from xy_jax.convert.hf import export_hf
  from xy_jax.data.tokenizer import DEFAULT_ASSET, load_tokenizer
  from xy_jax.eval.lm_eval_tasks import run_lm_eval, write_task_files
  from xy_jax.eval.run import EvalSpec, Evaluator
  from xy_jax.models.factory import init_model
  from xy_jax.models.llama import CausalLM
  from xy_jax.weights.load import load_model
  from xy_jax.sharding import LogicalSharding
  mesh = cli.mesh_sharding("1,1,-1")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  data_dir = FLAGS.eval_data_dir or os.path.join(root, "data", "eval", "bench", FLAGS.eval_task)
  spec = EvalSpec(FLAGS.eval_task, data_dir, batch_tokens=FLAGS.batch_tokens)
  with tempfile.TemporaryDirectory() as d:
    hf_dir = os.path.join(d, "hf")
    export_hf(init_model(CausalLM, cfg, LogicalSharding(), seed=0), cfg, hf_dir,
              tokenizer_file=DEFAULT_ASSET, log=lambda *_: None)
    loaded = load_model(hf=hf_dir, ckpt=None, sharding=mesh, log=lambda *_: None, dtype=FLAGS.dtype)
    graphdef, params = nnx.split(loaded.model)
    evaluator = Evaluator(graphdef, load_tokenizer(loaded.tokenizer_file), mesh, cfg.max_position_embeddings)
    first = evaluator.evaluate(params, spec)  # compiles one program per length bucket
    ours = evaluator.evaluate(params, spec)
    n = len(ours.records)
    names = write_task_files(ours.split, data_dir, os.path.join(d, "tasks"))
    start = time.perf_counter()
    result = run_lm_eval(hf_dir, os.path.join(d, "tasks"), names, spec.num_shots,
                         batch_size=FLAGS.eval_batch, dtype=FLAGS.dtype)
    peer_seconds = time.perf_counter() - start
  peer_items = sum(len(result["samples"][t]) for t in names)
  assert peer_items == n, (peer_items, n)
  ours_rate, peer_rate = n / ours.seconds, n / peer_seconds
  print(f"eval items: {n} ({FLAGS.eval_task} {ours.split.split}, {spec.num_shots}-shot log-likelihood, "
        f"{FLAGS.dtype}, {jax.devices()[0].device_kind})")
  print(f"eval items/s:      xy_jax {ours_rate:,.1f} (first run, compiling: {n / first.seconds:,.1f})   "
        f"lm-eval HF backend {peer_rate:,.1f} (batch {FLAGS.eval_batch}, includes its data loading)")
  print(f"eval ratio: {ours_rate / peer_rate:.2f}")


def bench_llamacpp(cfg):
  """Batch-1 decoding: our generator against llama.cpp on GGUF files its converter made from our export."""
  from xy_jax.peers import llamacpp_peer
  from xy_jax.convert.hf import export_hf
  from xy_jax.data.tokenizer import DEFAULT_ASSET
  from xy_jax.models.factory import init_model
  from xy_jax.models.llama import CausalLM
  from xy_jax.sharding import LogicalSharding
  model = init_model(CausalLM, cfg, LogicalSharding(), seed=0)
  prompt = np.random.default_rng(0).integers(4, cfg.vocab_size, (1, FLAGS.prompt_len)).tolist()
  ours = generate_tokens_per_s(model, prompt)
  with tempfile.TemporaryDirectory() as d:
    export_hf(model, cfg, os.path.join(d, "hf"), tokenizer_file=DEFAULT_ASSET, log=lambda *_: None)
    theirs = llamacpp_peer.decode_tokens_per_s(FLAGS.llamacpp, os.path.join(d, "hf"), d, FLAGS.new_tokens,
                                               os.cpu_count())
  print(f"decode tokens/s at batch 1 ({FLAGS.new_tokens} tokens): xy_jax {ours:,.1f} ({FLAGS.dtype})   "
        + "   ".join(f"llama.cpp {k} {v:,.1f}" for k, v in theirs.items()))
  print(f"llamacpp ratio: {ours / theirs['f32']:.2f}")


def main(argv):
  del argv
  if FLAGS.llamacpp:
    from xy_jax.models.presets import get_preset
    return bench_llamacpp(get_preset(FLAGS.preset, dtype=FLAGS.dtype, remat_policy="none"))
  if FLAGS.eval:
    from xy_jax.models.presets import get_preset
    return bench_eval(get_preset(FLAGS.preset, dtype=FLAGS.dtype, remat_policy="none"))
  from xy_jax.convert.hf import export_hf
  from xy_jax.data.tokenizer import DEFAULT_ASSET
  from xy_jax.models.presets import get_preset
  import jax
  cfg = get_preset(FLAGS.preset, dtype=FLAGS.dtype, remat_policy="none")
  rng = np.random.default_rng(0)
  tokens = rng.integers(4, cfg.vocab_size, (FLAGS.batch, FLAGS.seq)).astype(np.int32)
  prompts = rng.integers(4, cfg.vocab_size, (FLAGS.batch, FLAGS.prompt_len)).tolist()
  cli.log(f"{FLAGS.preset}: {cfg.param_count() / 1e6:.1f}M params, batch {FLAGS.batch} x seq "
          f"{FLAGS.seq}, {FLAGS.dtype}, {jax.devices()[0].device_kind}, {os.cpu_count()} CPU threads")
  model, our_train, our_gen = bench_ours(cfg, tokens, prompts)
  with tempfile.TemporaryDirectory() as d:
    export_hf(model, cfg, os.path.join(d, "hf"), tokenizer_file=DEFAULT_ASSET, log=lambda *_: None)
    peer_train, peer_gen = bench_torch(os.path.join(d, "hf"), tokens, prompts)
  precision = ("float32" if FLAGS.dtype == "float32"
               else "mixed bfloat16 training, bfloat16 weights for generation")
  print(f"precision on both sides: {precision}")
  print(f"train tokens/s:    xy_jax {our_train:,.0f}   transformers+torch {peer_train:,.0f}")
  print(f"generate tokens/s: xy_jax {our_gen:,.0f}   transformers generate {peer_gen:,.0f}  "
        f"(greedy, batch {FLAGS.batch}, {FLAGS.new_tokens} new tokens)")
  if FLAGS.quant:
    bench_quantised(model, cfg, prompts, our_gen)
  print(f"train ratio: {our_train / peer_train:.2f}")
  print(f"generate ratio: {our_gen / peer_gen:.2f}")


if __name__ == "__main__":
  cli.run(main)
