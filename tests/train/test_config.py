"""Every shipped config loads and validates; bad fields fail with one line naming them."""

import glob
import importlib.util
import os

import pytest

from xy_jax.config import base_config, validate
from xy_jax.models.model_config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))


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
