"""End-to-end demo at tiny scale on CPU: the whole pipeline, run in order.

  make demo            (or: python tools/demo.py --out demo_out)
  make demo DEMO_FLAGS="--preset small --steps_scale 4"      (a bigger model for a GPU/TPU host)

clean the shipped corpus (normalise, language, quality filters, PII masking, exact and MinHash
near dedup, with planted junk and copies from data/raw; the stages below read the cleaned shards)
-> train the tokenizer -> prepare it -> bucketed pretraining -> mixed SFT (from the
pretrained weights) -> reward model (from the SFT body) -> PPO (actor/reference = SFT,
critic/reward = RM) -> DPO (policy/reference = SFT, the RM's pairs) -> win/tie/lose of PPO and of
DPO vs SFT judged by the RM -> people in the loop with scripted raters (SFT candidates voted on
through the raters' pages, the RM trained a few steps on the exported pairs, GSB votes on PPO vs
SFT beside the RM judge) -> benchmark samples (C-Eval,
CMMLU, MMLU, FinanceIQ: pretrained by log-likelihood, SFT and PPO by generation) -> export the PPO actor to
Hugging Face -> load it with transformers and answer questions beside our generator (tokens must
agree) -> int8/int4 (RTN and GPTQ) quantisation with perplexity against bfloat16 and the
bf16 / 8-bit bitsandbytes / 4-bit GPTQ Hugging Face releases -> Self-QA data from documents
-> continued pretraining in miniature (a general-text base, its vocabulary extended with finance
pieces, embeddings-only stage 1, full stage 2 with the finance share raised) -> PNG plots ->
summary (also written to summary.json).
`--config_dir` points at other configs with the same file names; `--quick` is the test's short run.
"""

import itertools
import json
import os
import shutil
import sys
import time

from absl import flags
from loguru import logger

from xy_jax import cli
from xy_jax.config import model_config, validate
from xy_jax.convert.hf import export_hf
from xy_jax.data.self_qa import SelfQAReport, self_qa
from xy_jax.data.sources import SkipReport, expand_paths, located_documents, read_documents
from xy_jax.data.tokenizer_training import train_tokenizer
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer
from xy_jax.infer.chat import single_turn_generate
from xy_jax.main.demo_clean import clean_demo_corpus, cleaned_documents, use_cleaned_sources
from xy_jax.main.demo_people import people_in_the_loop
from xy_jax.infer.generate import Generator
from xy_jax.infer.perplexity import PerplexityEvaluator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.weights.load import load_checkpoint
from xy_jax.convert.hf_quant import export_quantized
from xy_jax.data.calibration_text import DEFAULT_CALIBRATION, calibration_docs
from xy_jax.quant.calibrate import calibration_rows, gptq_quantize_model
from xy_jax.quant.quantize_model import param_bytes, quantize_model
from xy_jax.weights.write import save_quantized
from xy_jax.plots import plot_ppo, plot_training, read_metrics
from xy_jax.sharding import LogicalSharding, make_mesh
import xy_jax.stages  # noqa: F401  registers every stage
from xy_jax.train.loop import run

flags.DEFINE_string("out", "demo_out", "directory for every artifact (replaced)")
flags.DEFINE_string("config_dir", "configs",
                    "where pretrain_tiny.py, sft_tiny.py, reward_tiny.py, ppo_tiny.py live")
flags.DEFINE_float("steps_scale", 1.0, "multiply every stage's train.steps (e.g. 0.25 for a smoke run)")
flags.DEFINE_string("preset", None, "model preset for pretraining (e.g. small); later stages follow it")
flags.DEFINE_bool("quick", False, "a short run for tests: fewer steps, prompts and documents")
FLAGS = flags.FLAGS
QUESTIONS = ("什么是市盈率？", "什么是复利？", "What is the current ratio?")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository


def banner(name):
  print(f"\n== {name}", flush=True)
  return time.time()


def load_config(name):
  """`name` is a file in --config_dir, optionally `file.py:arg` for configs with several parts."""
  cfg = cli.load_config_file(os.path.join(FLAGS.config_dir, name))
  if FLAGS.preset and cfg.stage == "pretrain":
    cfg.model = model_config(FLAGS.preset)
  scale = FLAGS.steps_scale * (0.25 if FLAGS.quick else 1.0)
  cfg.train.steps = max(1, int(cfg.train.steps * scale))
  cfg.optim.warmup_steps = min(cfg.optim.warmup_steps, cfg.train.steps)
  for k in ("eval_every", "checkpoint_every"):
    cfg.train[k] = min(cfg.train[k], cfg.train.steps)
  return cfg


def train_stage(out, name, config, init_from=None, tokenizer="demo", adjust=None, **ppo):
  """`tokenizer`: the demo's (default), a file, or None for the starting checkpoint's; `adjust(cfg)`
  changes the loaded config (other data, fewer steps)."""
  cfg = load_config(config)
  if adjust:
    adjust(cfg)
  cfg.data.tokenizer = os.path.join(out, "tokenizer.model") if tokenizer == "demo" else tokenizer
  cfg.data.prepared_dir = os.path.join(out, "prepared", name)
  if init_from:
    cfg.init_from_checkpoint = init_from
  for k, v in ppo.items():
    cfg.ppo[k] = v
  t = banner(f"{name}: {config}, {cfg.train.steps} steps on {cli.devices_summary()}")
  workdir = os.path.join(out, name)
  result = run(cfg, workdir, log=print)
  metrics = os.path.join(workdir, "metrics.jsonl")
  (plot_ppo(metrics, os.path.join(out, f"{name}.png")) if cfg.stage == "ppo" else
   plot_training(metrics, os.path.join(out, f"{name}.png"), name))
  print(f"{name}: {time.time() - t:.1f}s, final loss {result.last_loss:.4f}, plot {out}/{name}.png")
  return cfg, workdir, read_metrics(os.path.join(workdir, "metrics.jsonl"))


def clean_corpus(out, summary):
  """The shipped pretraining sources through the curation pipeline into OUT/clean/<source>
  (xy_jax/main/demo_clean.py); returns {source: (its shards' glob,)}."""
  t = banner("clean the shipped corpus: normalise, language, quality, PII, exact and near dedup -> "
             f"{out}/clean/<source>")
  logger.remove()  # datatrove logs every stage of every task at INFO
  logger.add(sys.stderr, level="WARNING")
  cleaned = clean_demo_corpus(out, summary)
  print(f"cleaning: {time.time() - t:.1f}s; the tokenizer, pretraining, SFT's LM mix and continued "
        "pretraining read the cleaned shards")
  return cleaned


def train_demo_tokenizer(out, cleaned):
  """Sentencepiece BPE on every cleaned pretraining document (the tokenizer all stages use)."""
  t = banner("tokenizer: sentencepiece BPE (byte fallback) on the cleaned pretraining text")
  text_file = os.path.join(out, "tokenizer_text.txt")
  with open(text_file, "w", encoding="utf-8") as f:
    for patterns in cleaned.values():
      for doc in cleaned_documents(patterns):
        f.write(doc + "\n")
  model = train_tokenizer(os.path.join(out, "tokenizer"), vocab_size=2048, text_file=text_file)
  tok = load_tokenizer(model)
  sample = "市盈率是股价与每股收益的比值。"
  print(f"{model}: {tok.vocab_size} pieces; {sample!r} -> {len(tok.encode(sample))} tokens "
        f"({time.time() - t:.1f}s)")
  return model, tok


def _dir_mib(path):
  return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
             if f.endswith(".safetensors")) / 2**20


def quantised_chat_models(out, ckpt, sharding, ppl, tok, summary):
  """The XuanYuan releases of the chat model: bfloat16, 8-bit (bitsandbytes LLM.int8) and 4-bit
  (GPTQ) Hugging Face directories, and our int8 / RTN int4 / GPTQ int4 checkpoints, with their
  perplexity against bfloat16 and one answer each."""
  banner("quantise the chat model: int8 (per channel), int4 RTN and GPTQ (groups of 32); releases")
  float_chat = load_checkpoint(ckpt, sharding, dtype="bfloat16", param_dtype="float32")
  base = ppl(float_chat.model)
  figures = [f"bfloat16 {base:.4f}"]
  ids = ChatTemplate().encode_prompt(tok, [Message("user", QUESTIONS[0])])
  calibration = calibration_rows(tok.encode_batch(calibration_docs(
      [os.path.join(ROOT, spec) for spec in DEFAULT_CALIBRATION]), bos=True), 32, 128)
  bf16_dir = os.path.join(out, "chat_bf16")
  export_hf(float_chat.model, float_chat.cfg, bf16_dir, dtype="bfloat16",
            tokenizer_file=float_chat.tokenizer_file, log=lambda _: None)
  releases = [f"bfloat16 {bf16_dir} {_dir_mib(bf16_dir):.2f} MiB"]
  for name, mode, method, release in (("int8", "int8", "rtn", "chat_bnb8"), ("int4", "int4", "rtn", None),
                                      ("gptq_int4", "int4", "gptq", "chat_gptq4")):
    t = time.time()
    if method == "gptq":
      q = gptq_quantize_model(float_chat.model, float_chat.cfg, calibration, mode, sharding, 32)
    else:
      q = quantize_model(float_chat.model, float_chat.cfg, mode, sharding, group_size=32)
    path = os.path.join(out, f"chat_{name}")
    save_quantized(path, q, "causal_lm", ckpt, float_chat.tokenizer_file)
    if release:
      hf_path = os.path.join(out, release)
      export_quantized(q.model, q.cfg, hf_path, tokenizer_file=float_chat.tokenizer_file,
                       log=lambda _: None)
      releases.append(f"{'8-bit bitsandbytes' if mode == 'int8' else '4-bit GPTQ'} {hf_path} "
                      f"{_dir_mib(hf_path):.2f} MiB")
    value = ppl(q.model)
    rise = 100 * (value / base - 1)
    figures.append(f"{name} {value:.4f} ({rise:+.2f}%)")
    summary[f"{name} perplexity rise vs bfloat16 (%)"] = rise
    mib = param_bytes(q.model) / 2**20
    answer = Generator(q.model, tok.eos_id, tok.pad_id).generate(
        [ids], SamplingConfig(greedy=True, max_new_tokens=48))[0].tokens
    print(f"{name}: {path} ({mib:.2f} MiB of weights vs {param_bytes(float_chat.model) / 2**20:.2f} "
          f"float32), perplexity {value:.4f} ({rise:+.2f}%), {time.time() - t:.1f}s\n"
          f"  Human: {QUESTIONS[0]}\n  XuanYuan ({name}): {tok.decode(answer)}")
  print("Hugging Face releases (safetensors): " + "; ".join(releases))
  summary["held-out perplexity of the chat model"] = ", ".join(figures)
  summary["releases"] = "; ".join(releases)


def continued_pretraining(out, sharding, summary, cleaned):
  """XuanYuan's continued pretraining in miniature: a base model and tokenizer on general text only;
  its vocabulary extended with pieces learnt from the finance text; stage 1 trains the embeddings
  and LM head, stage 2 everything with the finance share raised half-way. Nats per character on
  the documents each source holds out from training (comparable across the two tokenizers). The
  general and finance text are the cleaned shards (`cleaned`), as in pretraining."""
  from xy_jax.data.pipeline import eval_mask
  from xy_jax.vocab_extension import extend_vocabulary
  banner("continued pretraining: general-text base -> vocabulary + finance pieces -> stage 1 -> stage 2")
  docs = {name: cleaned_documents(cleaned[name]) for name in ("general", "finance")}
  general = os.path.join(out, "general_text.txt")
  with open(general, "w", encoding="utf-8") as f:
    f.writelines(d + "\n" for d in docs["general"])
  tokenizer = train_tokenizer(os.path.join(out, "general_tokenizer"), vocab_size=512, text_file=general)

  def adjust(cfg):
    use_cleaned_sources(cfg, cleaned)

  _, base_dir, _ = train_stage(out, "cpt_base", "continue_tiny.py:base", tokenizer=tokenizer, adjust=adjust)
  # the documents each source's data pipeline holds out (its eval_fraction and seed)
  held_out = {name: [d for d, m in zip(ds, eval_mask(len(ds), 0.05, 0)) if m] for name, ds in docs.items()}

  def nats_per_char(ckpt):
    loaded = load_checkpoint(ckpt, sharding, dtype="float32")
    tok = load_tokenizer(loaded.tokenizer_file)
    scores = []
    for docs in held_out.values():
      nll, _ = PerplexityEvaluator(loaded.model, tok.pad_id).evaluate(tok.encode_batch(docs, bos=True))
      scores.append(nll / sum(len(d) for d in docs))
    return scores

  extended = os.path.join(out, "cpt_extended")
  result = extend_vocabulary(load_checkpoint(os.path.join(base_dir, "checkpoints"), sharding),
                             "cpt_base", expand_paths(list(cleaned["finance"]), "finance"), extended, sharding,
                             new_pieces=256, log=print)
  for f, (before, after) in result.tokens_per_char.items():
    print(f"tokens per character of {os.path.relpath(f, out)}: {before:.3f} -> {after:.3f}")
  _, s1_dir, _ = train_stage(out, "cpt_stage1", "continue_tiny.py:stage1", extended, tokenizer=None,
                             adjust=adjust)
  _, s2_dir, _ = train_stage(out, "cpt_stage2", "continue_tiny.py:stage2",
                             os.path.join(s1_dir, "checkpoints"), tokenizer=None, adjust=adjust)
  rows = {"base (general tokenizer)": nats_per_char(os.path.join(base_dir, "checkpoints")),
          "vocabulary extended": nats_per_char(extended),
          "after stage 1 (embeddings)": nats_per_char(os.path.join(s1_dir, "checkpoints")),
          "after stage 2 (everything)": nats_per_char(os.path.join(s2_dir, "checkpoints"))}
  print(f"{'nats per character, held out':<32} {'general':>8} {'finance':>8}")
  for name, (g, f) in rows.items():
    print(f"{name:<32} {g:>8.3f} {f:>8.3f}")
  summary["continued pretraining tokens/char of finance text"] = " -> ".join(
      f"{r:.3f}" for r in next(iter(result.tokens_per_char.values())))
  summary["continued pretraining nats/char general, finance"] = "; ".join(
      f"{name} {g:.3f}, {f:.3f}" for name, (g, f) in rows.items())


def benchmarks(out, models, tok, sharding, summary):
  """The shipped benchmark samples: the base model by log-likelihood (5-shot), the chat models by
  generating (0-shot, answer letter extracted), as their releases are judged."""
  banner("benchmarks: C-Eval, CMMLU, MMLU, FinanceIQ samples (data/eval/bench)")
  from flax import nnx
  from xy_jax.eval.report import bar_chart
  from xy_jax.eval.run import EvalSpec, Evaluator
  accuracy = {}
  for name, loaded in models.items():
    graphdef, params = nnx.split(loaded.model)
    evaluator = Evaluator(graphdef, tok, sharding, loaded.cfg.max_position_embeddings)
    mode = "loglik" if name == "pretrained" else "generate"
    accuracy[f"{name} ({mode})"] = row = {}
    for task in ("cmmlu", "financeiq") if FLAGS.quick else ("ceval", "cmmlu", "mmlu", "financeiq"):
      spec = EvalSpec(task, os.path.join(ROOT, "data/eval/bench", task), mode=mode,
                      limit=4 if FLAGS.quick else None, max_new_tokens=8)
      s = evaluator.evaluate(params, spec).summary()
      row[task] = s["accuracy"]
      extra = f", {s['unparseable']} unparseable" if mode == "generate" else ""
      print(f"{name:<11} {task:<10} {mode:<8} {s['items']:>3} items  accuracy {s['accuracy']:.3f}{extra}")
    summary[f"benchmark accuracy, {name} ({mode})"] = ", ".join(f"{t} {a:.3f}" for t, a in row.items())
  bar_chart(accuracy, os.path.join(out, "benchmarks.png"), "shipped benchmark samples (chance 0.25)")


def self_qa_data(out, model, tok, n_docs, summary):
  """Self-QA SFT records from shipped finance documents, written by the chat model."""
  banner(f"Self-QA: questions and grounded answers for {n_docs} documents, by the chat model")
  docs = list(itertools.islice(located_documents(os.path.join(ROOT, "data/pretrain/finance.jsonl"),
                                                 SkipReport()), n_docs))
  generate = single_turn_generate(Generator(model, tok.eos_id, tok.pad_id), tok,
                                  SamplingConfig(max_new_tokens=48))
  report = SelfQAReport()
  path = os.path.join(out, "self_qa.jsonl")
  with open(path, "w", encoding="utf-8") as f:
    for record in self_qa(docs, generate, report=report, provenance={"model": "demo chat model"}):
      f.write(json.dumps(record, ensure_ascii=False) + "\n")
  print(f"{report.summary()}\nwrote {path}")
  summary["self-qa"] = report.summary()


def main(argv):
  del argv
  out = os.path.abspath(FLAGS.out)
  shutil.rmtree(out, ignore_errors=True)
  os.makedirs(out)
  start = time.time()
  summary = {}
  cleaned = clean_corpus(out, summary)

  def cleaned_sources(cfg):  # the shipped pretraining files -> their cleaned shards
    use_cleaned_sources(cfg, cleaned)

  _, tok = train_demo_tokenizer(out, cleaned)
  held_out = tok.encode_batch(list(read_documents(os.path.join(ROOT, "data/eval/heldout.txt"),
                                                  SkipReport())), bos=True)

  pre_cfg, pre_dir, pre_metrics = train_stage(out, "pretrain", "pretrain_tiny.py", adjust=cleaned_sources)
  sharding = LogicalSharding(make_mesh(dict(pre_cfg.mesh)))
  untrained = init_model(CausalLM, validate(pre_cfg), sharding, seed=pre_cfg.seed)

  def ppl(model):
    return PerplexityEvaluator(model, tok.pad_id).perplexity(held_out)

  pretrained = load_checkpoint(os.path.join(pre_dir, "checkpoints"), sharding, dtype="float32")
  summary["perplexity on held-out text: untrained"] = ppl(untrained)
  summary["perplexity on held-out text: pretrained"] = ppl(pretrained.model)
  summary["pretrain final loss"] = [r["loss"] for r in pre_metrics if "loss" in r][-1]

  _, sft_dir, sft_metrics = train_stage(out, "sft", "sft_tiny.py", os.path.join(pre_dir, "checkpoints"),
                                        adjust=cleaned_sources)
  # a step can draw no row of the LM mix (its loss is then absent): the last step that has both
  last = [r for r in sft_metrics if "sft_loss" in r and "lm_loss" in r][-1]
  summary["sft final answer loss / lm loss"] = f"{last['sft_loss']:.4f} / {last['lm_loss']:.4f}"
  summary["sft held-out answer loss"] = [r for r in sft_metrics if "eval/loss/sft" in r][-1]["eval/loss/sft"]

  _, rm_dir, rm_metrics = train_stage(out, "reward", "reward_tiny.py", os.path.join(sft_dir, "checkpoints"))
  summary["reward model held-out accuracy"] = [
      r for r in rm_metrics if "eval/accuracy/preference" in r][-1]["eval/accuracy/preference"]

  _, ppo_dir, ppo_metrics = train_stage(
      out, "ppo", "ppo_tiny.py", actor_checkpoint=os.path.join(sft_dir, "checkpoints"),
      reward_checkpoint=os.path.join(rm_dir, "checkpoints"))
  rewards = [r["reward_mean"] for r in ppo_metrics if "reward_mean" in r]
  k = max(1, len(rewards) // 5)
  summary["ppo reward mean: first / last iterations"] = (
      f"{sum(rewards[:k]) / k:.3f} -> {sum(rewards[-k:]) / k:.3f} (mean of {k} iterations each)")
  summary["ppo final KL"] = [r["kl"] for r in ppo_metrics if "kl" in r][-1]

  _, dpo_dir, dpo_metrics = train_stage(out, "dpo", "dpo_tiny.py", os.path.join(sft_dir, "checkpoints"))
  summary["dpo held-out rewards/accuracies"] = [
      r for r in dpo_metrics if "eval/rewards/accuracies/preference" in r][-1]["eval/rewards/accuracies/preference"]

  from xy_jax.rl.compare import compare, plot, table
  from xy_jax.rl.prompts import read_prompts
  sft_model = load_checkpoint(os.path.join(sft_dir, "checkpoints"), sharding, dtype="float32")
  ppo_actor = load_checkpoint(os.path.join(ppo_dir, "checkpoints"), sharding, dtype="float32")
  dpo_model = load_checkpoint(os.path.join(dpo_dir, "checkpoints"), sharding, dtype="float32")
  judge = load_checkpoint(os.path.join(rm_dir, "checkpoints"), sharding, dtype="float32")
  prompts = read_prompts([os.path.join(ROOT, "data/eval/prompts.jsonl")], "eval prompts", tok,
                         ChatTemplate(), 96, SkipReport())
  judged = {}
  for name, model, png in (("PPO", ppo_actor, "win_rates"), ("DPO", dpo_model, "win_rates_dpo")):
    banner(f"win / tie / lose: {name} model vs SFT model, judged by the reward model")
    outcomes = compare(model.model, sft_model.model, judge.model, prompts, tok,
                       SamplingConfig(temperature=0.7, top_p=0.95, max_new_tokens=32), margin=0.1)
    rows = judged[name] = table(outcomes)
    if name == "PPO":
      ppo_outcomes = outcomes
    for r in rows:
      print(f"{r['category']:<28} win {r['win']:>6.1%}  tie {r['tie']:>6.1%}  lose {r['lose']:>6.1%}  "
            f"win+tie {r['win_and_tie']:>6.1%}")
    plot(rows, os.path.join(out, f"{png}.png"), name, "SFT")
    for r in rows:
      if r["category"] in ("general (all)", "finance (all)", "overall"):
        summary[f"win+tie {name} vs SFT, {r['category']}"] = f"{r['win_and_tie']:.1%}"

  t = banner("people in the loop: SFT candidates -> scripted raters' preferences -> RM; GSB of PPO vs SFT")
  people_in_the_loop(out, train_stage, sft_model, judge, prompts, tok, os.path.join(sft_dir, "checkpoints"),
                     ppo_outcomes, judged["PPO"], summary)
  print(f"people in the loop: {time.time() - t:.1f}s")

  banner("export the PPO actor (chat model) and the reward model to Hugging Face")
  chat = ppo_actor
  hf_dir = os.path.join(out, "hf_chat")
  export_hf(chat.model, chat.cfg, hf_dir, tokenizer_file=chat.tokenizer_file, log=print)
  rm = load_checkpoint(os.path.join(rm_dir, "checkpoints"), sharding, dtype="float32")
  export_hf(rm.model, rm.cfg, os.path.join(out, "hf_reward"), kind="reward",
            tokenizer_file=rm.tokenizer_file, log=print)

  banner("chat through transformers (PyTorch) beside xy_jax, greedy")
  import torch
  from transformers import AutoModelForCausalLM, AutoTokenizer
  hf_tok = AutoTokenizer.from_pretrained(hf_dir)
  hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
  gen = Generator(chat.model, tok.eos_id, tok.pad_id)
  agree = True
  for q in QUESTIONS:
    ids = hf_tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert ids == ChatTemplate().encode_prompt(tok, [Message("user", q)])
    with torch.no_grad():
      ref = hf.generate(torch.tensor([ids]), max_new_tokens=48, do_sample=False,
                        pad_token_id=tok.pad_id)[0, len(ids):].tolist()
    if ref and ref[-1] == tok.eos_id:  # transformers keeps the closing EOS
      ref = ref[:-1]
    ours = gen.generate([ids], SamplingConfig(greedy=True, max_new_tokens=48))[0].tokens
    agree &= ref == ours
    print(f"Human: {q}\n  transformers: {hf_tok.decode(ref, skip_special_tokens=True)}\n"
          f"  xy_jax:       {tok.decode(ours)}")
  summary["greedy tokens identical to transformers"] = agree

  benchmarks(out, {"pretrained": pretrained, "sft": sft_model, "ppo": ppo_actor, "dpo": dpo_model}, tok,
             sharding, summary)
  quantised_chat_models(out, os.path.join(ppo_dir, "checkpoints"), sharding, ppl, tok, summary)
  self_qa_data(out, chat.model, tok, 8 if FLAGS.quick else 32, summary)
  continued_pretraining(out, sharding, summary, cleaned)

  print("\n== summary")
  rows = [("output", out), ("cleaned corpus (report.json each)", f"{out}/clean/{{{','.join(cleaned)}}}"),
          ("tokenizer", os.path.join(out, "tokenizer.model")),
          ("hf chat model (PPO actor)", hf_dir), ("hf reward model", os.path.join(out, "hf_reward")),
          ("quantised chat models", f"{out}/chat_int8, {out}/chat_int4, {out}/chat_gptq_int4"),
          ("chat releases (HF)", f"{out}/chat_bf16, {out}/chat_bnb8, {out}/chat_gptq4"),
          ("self-qa sft data", os.path.join(out, "self_qa.jsonl")),
          ("plots", ", ".join(f"{out}/{n}.png" for n in ("pretrain", "sft", "reward", "ppo", "dpo", "win_rates",
                                                          "win_rates_dpo", "benchmarks", "cpt_stage2")))]
  rows += [(k, f"{v:.4f}" if isinstance(v, float) else v) for k, v in summary.items()]
  rows.append(("wall time", f"{time.time() - start:.0f}s"))
  for k, v in rows:
    print(f"{k + ':':<44}{v}")
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, ensure_ascii=False, indent=2)
  if not agree:
    raise SystemExit("demo failed: transformers and xy_jax disagree")


if __name__ == "__main__":
  cli.run(main)
