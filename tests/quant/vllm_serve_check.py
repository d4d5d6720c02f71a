"""What vLLM makes of HF directories on CPU (run in tests/quant/vllm_env.py's venv).

  python vllm_serve_check.py GPTQ_DIR PROMPTS.json MAX_NEW OUT.json [CONFIG_DIR ...]

GPTQ_DIR is served with quantization="gptq" and no max_model_len (vLLM derives it from config.json):
its greedy continuations of PROMPTS (lists of token ids), the length it allows and whether it
refuses one token more. Each CONFIG_DIR is only configured: its allowed length and, as vLLM's
LLaMA builds it, its rotary table (rows and base). Writes OUT as JSON; vLLM logs to stdout.
"""

import json
import os
import sys

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default takes most of the memory
# Nothing leaves the machine: no usage report (vLLM sends one by default), no hub look-ups.
os.environ.update(VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1")


def rotary_table(rope):
  return {"class": type(rope).__name__, "rows": int(rope.cos_sin_cache.shape[0]), "base": float(rope.base)}


def configured(model_dir):
  from vllm.config import ModelConfig, VllmConfig, set_current_vllm_config
  from vllm.model_executor.layers.rotary_embedding import get_rope
  cfg = ModelConfig(model=model_dir)
  hf = cfg.hf_config
  try:
    ModelConfig(model=model_dir, max_model_len=cfg.max_model_len + 1)
    refuses = False
  except ValueError as e:
    refuses = "is greater than the derived max_model_len" in str(e)
  head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
  with set_current_vllm_config(VllmConfig(model_config=cfg)):
    rope = get_rope(head_dim, max_position=hf.max_position_embeddings, rope_parameters=hf.rope_parameters)
  return {"max_model_len": cfg.max_model_len, "refuses_one_more": refuses, "rope": rotary_table(rope)}


def main(gptq_dir, prompts_path, max_new, out_path, *config_dirs):
  from vllm import LLM, SamplingParams
  llm = LLM(model=gptq_dir, quantization="gptq", dtype="float16", enforce_eager=True, seed=0)
  prompts = json.load(open(prompts_path))
  sampling = SamplingParams(temperature=0, max_tokens=int(max_new), ignore_eos=True)
  outs = llm.generate([{"prompt_token_ids": p} for p in prompts], sampling, use_tqdm=False)
  layer = lambda m: m.model.layers[0]  # noqa: E731
  result = {
      "tokens": [list(o.outputs[0].token_ids) for o in outs],
      "served": {
          "max_model_len": llm.llm_engine.model_config.max_model_len,
          "refuses_one_more": configured(gptq_dir)["refuses_one_more"],
          "rope": llm.apply_model(lambda m: rotary_table(layer(m).self_attn.rotary_emb))[0],
          "linear": llm.apply_model(lambda m: type(layer(m).mlp.down_proj.quant_method).__name__)[0],
      },
      "configured": {d: configured(d) for d in config_dirs},
  }
  json.dump(result, open(out_path, "w"))


if __name__ == "__main__":
  main(*sys.argv[1:])
