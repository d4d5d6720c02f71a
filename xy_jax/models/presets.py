"""Named model shapes: the XuanYuan family (seeds) and tiny CPU models.

FFN width, RoPE base and norm epsilon are not given by the seeds; we take LLaMA's values for the
matching shape, and the HF importer reads the true ones from `config.json`.
"""

from __future__ import annotations

from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig

XUANYUAN_VOCAB = 39438

PRESETS: dict[str, ModelConfig] = {
    "xuanyuan_6b": ModelConfig(
        vocab_size=XUANYUAN_VOCAB, hidden_size=4096, intermediate_size=11008, num_hidden_layers=30,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048,
        rms_norm_eps=1e-6),
    "xuanyuan_13b": ModelConfig(
        vocab_size=XUANYUAN_VOCAB, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
        num_attention_heads=40, num_key_value_heads=40, max_position_embeddings=4096,
        rms_norm_eps=1e-5),
    "xuanyuan_70b": ModelConfig(
        vocab_size=XUANYUAN_VOCAB, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=4096,
        rms_norm_eps=1e-5),
    "xuanyuan2_70b": ModelConfig(
        vocab_size=XUANYUAN_VOCAB, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=16384,
        rope_theta=10000.0, rope_scaling={"rope_type": "linear", "factor": 4.0}, rms_norm_eps=1e-5),
    # ~1.37B parameters with XuanYuan's vocabulary: the GPU check's train-step and bucket figures.
    "gpu_1b3": ModelConfig(
        vocab_size=XUANYUAN_VOCAB, hidden_size=2048, intermediate_size=5504, num_hidden_layers=24,
        num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=16384,
        rms_norm_eps=1e-5),
    # Tiny shapes for CPU tests and the demo; vocab matches the shipped tiny tokenizer.
    "tiny": ModelConfig(
        vocab_size=2048, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rope_theta=10000.0, rms_norm_eps=1e-6, dtype="float32", remat_policy="none"),
    "small": ModelConfig(  # ~49M parameters: CPU benchmarks
        vocab_size=2048, hidden_size=512, intermediate_size=1408, num_hidden_layers=16,
        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048,
        rms_norm_eps=1e-6, dtype="float32", remat_policy="none"),
}


def get_preset(name: str, **overrides) -> ModelConfig:
  if name not in PRESETS:
    raise ConfigError(f"model.preset={name!r}: unknown preset (known: {', '.join(PRESETS)})")
  cfg = PRESETS[name].replace(**overrides)
  cfg.validate()
  return cfg
