"""lm-evaluation-harness task files for benchmark CSVs on disk: its own `ceval-valid` and `cmmlu`
templates (included from the installed package) pointed at local files with `dataset_path: csv`,
so lm-eval scores exactly the items `tools/evaluate.py` scores (parity tests, `tools/bench.py
--eval`). lm_eval is an optional dependency (the test extra)."""

from __future__ import annotations

import json
import os

from xy_jax.eval.tasks import Split

TEMPLATES = {"ceval": ("ceval", "_default_ceval_yaml"), "cmmlu": ("cmmlu", "_default_template_yaml")}


def write_task_files(split: Split, data_dir: str, out_dir: str) -> list[str]:
  """One task per subject of `split` in `out_dir`; returns the task names (for TaskManager's
  include_path). C-Eval's template scores its "val" data files key, CMMLU's "test"."""
  import lm_eval
  task = split.bench.name
  if task not in TEMPLATES:
    raise ValueError(f"{task}: lm-eval ships no template for it (compare ceval or cmmlu)")
  template = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", *TEMPLATES[task])
  scored = "val" if task == "ceval" else "test"
  os.makedirs(out_dir, exist_ok=True)
  names = []
  for subject, (prompt_name, _) in split.subjects.items():
    name = f"xy_{task}_{subject}"
    files = {"dev": split.bench.path(data_dir, "dev", subject),
             scored: split.bench.path(data_dir, split.split, subject)}
    lines = [f"include: {template}", f"task: {name}", "dataset_path: csv", "dataset_name: null",
             "dataset_kwargs:", "  keep_default_na: false", "  data_files:"]
    lines += [f"    {k}: {json.dumps(os.path.abspath(v))}" for k, v in files.items()]
    description = split.bench.description.format(subject=prompt_name)
    lines.append(f"description: {json.dumps(description, ensure_ascii=False)}")
    with open(os.path.join(out_dir, f"{name}.yaml"), "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")
    names.append(name)
  return names


def run_lm_eval(hf_dir: str, task_dir: str, names: list[str], shots: int, limit: int | None = None,
                batch_size: int = 8, dtype: str = "float32") -> dict:
  """lm-eval's HF backend (add_bos_token=True, as the XuanYuan tokenizer's BOS is part of every
  prompt) on those tasks; returns simple_evaluate's result (with per-item samples)."""
  import lm_eval
  from lm_eval.tasks import TaskManager
  for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
    os.environ.setdefault(var, "1")
  return lm_eval.simple_evaluate(
      model="hf", model_args=f"pretrained={hf_dir},dtype={dtype},add_bos_token=True", tasks=names,
      task_manager=TaskManager(include_path=task_dir, include_defaults=False), num_fewshot=shots,
      limit=limit, log_samples=True, device="cpu", batch_size=batch_size)
