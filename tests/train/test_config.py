"""Every shipped config loads and validates; bad fields fail with one line naming them."""

import glob
import importlib.util
import os
import subprocess
import sys

import pytest

from tests.train.train_helpers import env
from xy_jax.config import base_config, validate
from xy_jax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Training configs; configs/clean_*.py hold a `clean` section only (tests/data/clean/test_cli.py).
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if not os.path.basename(p).startswith("clean_"))


def load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_shipped_config_validates(path):
  cfg = load(path)
  model = validate(cfg)
  assert model.num_hidden_layers > 0 and cfg.train.steps > 0


def test_the_xuanyuan2_recipe_buckets():
  cfg = load(os.path.join(ROOT, "configs", "pretrain_xuanyuan2_70b.py"))
  assert tuple(cfg.data.buckets) == (2048, 4096, 8192, 16384)
  assert cfg.model.max_position_embeddings == 16384
  assert {cfg.data.tokens_per_step // b for b in cfg.data.buckets} == {2048, 1024, 512, 256}


def _tiny():
  return load(os.path.join(ROOT, "configs", "pretrain_tiny.py"))


@pytest.mark.parametrize("field,value,message", [
    ("optim.schedule", "cosin", "optim.schedule: 'cosin' is not one of"),
    ("data.tokens_per_step", 1000, "data.tokens_per_step: 1000 is not a multiple of bucket length 64"),
    ("data.buckets", (64, 1024), "data.buckets: largest bucket 1024 exceeds model.max_position_embeddings=512"),
    ("optim.grad_accum", 64, "not divisible by optim.grad_accum=64"),
    ("train.steps", 0, "train.steps: must be positive"),
    ("model.quant", "int8", "model.quant: 'int8': quantised weights are for inference"),
    ("model.num_key_value_heads", 3, "model.num_attention_heads=4 is not a multiple of model.num_key_value_heads=3"),
])
def test_bad_fields_name_themselves(field, value, message):
  cfg = _tiny()
  section, name = field.split(".")
  cfg[section][name] = value
  with pytest.raises(ConfigError) as e:
    validate(cfg)
  assert message in str(e.value) and "\n" not in str(e.value)


def test_base_config_is_complete():
  cfg = base_config()
  cfg.data.sources = {"a": {"paths": ["x"], "weight": 1.0}}
  validate(cfg)


@pytest.mark.parametrize("path,arg", [("continue_llama2_70b.py", "stage1"), ("continue_llama2_70b.py", "stage2"),
                                      ("continue_tiny.py", "base"), ("continue_tiny.py", "stage2")])
def test_continued_pretraining_stages(path, arg):
  spec = importlib.util.spec_from_file_location(path[:-3], os.path.join(ROOT, "configs", path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config(arg)
  model = validate(cfg)
  if arg == "stage1":
    assert cfg.optim.trainable == r"embed_tokens|lm_head" and model.vocab_size == 39438
  if path == "continue_llama2_70b.py" and arg == "stage2":
    assert cfg.data.buckets == (2048, 4096, 8192, 16384) and len(cfg.data.mixture_schedule) == 2
    shares = [sum(w for n, w in m.items() if n.endswith("finance")) for _, m in cfg.data.mixture_schedule]
    assert shares == pytest.approx([0.2, 0.3])  # the finance share rises
    zh = sum(w for n, w in cfg.data.sources.items() for n, w in [(n, w.weight)] if n.startswith("zh"))
    assert zh == pytest.approx(0.75)  # Chinese:English 3:1


def _overridden(monkeypatch, *overrides, config="pretrain_tiny.py"):
  """The config `python -m xy_jax.train --config=CONFIG OVERRIDES` trains (its flags, in-process)."""
  from absl import flags
  from ml_collections import config_flags
  import xy_jax.cli  # noqa: F401  registers the parser for dict fields
  argv = ["train", f"--config={os.path.join(ROOT, 'configs', config)}", *overrides]
  monkeypatch.setattr(sys, "argv", argv)
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True)
  values(argv)
  return values.config


def test_dict_and_optional_fields_are_overridden_from_the_command_line(monkeypatch):
  cfg = _overridden(monkeypatch, '--config.model.rope_scaling={"type": "linear", "factor": 2.0}',
                    "--config.model.head_dim=32", '--config.data.sources.general={"paths": ["a.txt"], "weight": 2}')
  assert validate(cfg).rope_scaling == {"type": "linear", "factor": 2.0} and cfg.model.head_dim == 32
  assert list(cfg.data.sources.general.paths) == ["a.txt"] and cfg.data.sources.general.weight == 2
  cfg = _overridden(monkeypatch, "--config.model.rope_scaling=None", config="continue_llama2_70b.py:stage2")
  assert validate(cfg).rope_scaling is None


@pytest.mark.parametrize("value,message", [
    ('{"type": "linear", "factor": 2.0}', "error: train.steps: must be positive"),  # parsed and valid
    ('{"type": "bogus", "factor": 2.0}', "error: model.rope_scaling.rope_type='bogus': choose one of"),
    ("[2.0]", "error: flag --config.model.rope_scaling=[2.0]: expected a JSON object"),
])
def test_a_dict_override_reaches_validation(tmp_path, value, message):
  proc = subprocess.run([sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/pretrain_tiny.py",
                         f"--workdir={tmp_path}", f"--config.model.rope_scaling={value}",
                         "--config.train.steps=0"], capture_output=True, text=True, env=env(), cwd=ROOT,
                        timeout=120)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr[-2000:]


@pytest.mark.parametrize("config,field,value,message", [
    ("dpo_tiny.py", "dpo.beta", 0.0, "dpo.beta: 0.0: must be > 0"),
    ("ppo_tiny.py", "ppo.mini_batches", 5, "ppo.mini_batches: 5 does not divide ppo.prompts_per_step"),
    ("reward_tiny.py", "reward.loss", "mean", "reward.loss: 'mean': last_token or token_contrastive"),
])
def test_each_stage_checks_its_own_section(config, field, value, message):
  """config.validate checks the common sections; the stage's validator (registered beside its
  code) checks its own, and only for runs of that stage."""
  from xy_jax.train.task import validate_stage
  section, name = field.split(".")
  cfg = load(os.path.join(ROOT, "configs", config))
  cfg[section][name] = value
  validate(cfg)
  with pytest.raises(ConfigError) as e:
    validate_stage(cfg)
  assert str(e.value).startswith(message) and "\n" not in str(e.value)
  other = _tiny()  # a pretraining run does not read the section
  other[section][name] = value
  validate_stage(other)


def test_an_unregistered_stage_is_named():
  from xy_jax.train.task import validate_stage
  cfg = _tiny()
  cfg.stage = "rlhf"
  with pytest.raises(ConfigError, match=r"^stage='rlhf': not a registered stage; registered: dpo, ppo"):
    validate_stage(cfg)
