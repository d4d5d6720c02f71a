"""Typed description of a LLaMA-style decoder (the XuanYuan family)."""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from xy_jax.models import lora
from xy_jax.errors import ConfigError

ROPE_TYPES = ("default", "linear", "dynamic", "llama3")
REMAT_POLICIES = ("none", "full", "dots", "dots_with_no_batch_dims", "save_qkv_proj")
ATTENTION_IMPLS = ("auto", "xla", "cudnn", "splash")
QUANT_MODES = ("none", "int8", "int4")
# How a model runs rather than what it is: a run's config sets these over any loaded weights.
NUMERICS = ("dtype", "scan_layers", "remat_policy", "attention_impl")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape and numerics of the decoder. Field names follow HF `LlamaConfig` where one exists."""

  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_hidden_layers: int
  num_attention_heads: int
  num_key_value_heads: int
  head_dim: int | None = None  # None: hidden_size // num_attention_heads
  max_position_embeddings: int = 2048
  rope_theta: float = 10000.0
  # None or a dict as in HF: {"rope_type": "linear"|"dynamic"|"llama3", "factor": ..., ...}
  rope_scaling: dict[str, Any] | None = None
  rms_norm_eps: float = 1e-6
  bos_token_id: int = 1
  eos_token_id: int = 2
  pad_token_id: int = 0
  # Numerics and execution (not part of the HF config).
  dtype: str = "bfloat16"  # activations
  param_dtype: str = "float32"
  scan_layers: bool = True
  remat_policy: str = "full"
  attention_impl: str = "auto"
  # Weight-only quantisation of the projections (inference): int8 per output channel, int4 in
  # groups of `quant_group_size` contracted rows. Embeddings, norms and value heads stay float.
  quant: str = "none"
  quant_group_size: int = 128
  # LoRA adapters (`xy_jax.models.lora`): rank 0 = none. `lora_targets` is a regex fully matched
  # against projection names (q_proj ... down_proj, lm_head); scale = lora_alpha / lora_rank.
  lora_rank: int = 0
  lora_alpha: float = 8.0
  lora_dropout: float = 0.0
  lora_targets: str = "q_proj|v_proj"

  @property
  def resolved_head_dim(self) -> int:
    return self.head_dim or self.hidden_size // self.num_attention_heads

  @property
  def lora_scale(self) -> float:
    return self.lora_alpha / self.lora_rank if self.lora_rank else 0.0

  def adapter_fields(self) -> dict[str, Any]:
    """The LoRA fields and the base's quantisation: what a LoRA run puts over its base's config."""
    return {k: getattr(self, k) for k in ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets",
                                          "quant")}

  def replace(self, **kw) -> "ModelConfig":
    return dataclasses.replace(self, **kw)

  def numerics(self) -> dict[str, Any]:
    return {k: getattr(self, k) for k in NUMERICS}

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any] | ml_collections.ConfigDict, field: str = "model") -> "ModelConfig":
    if isinstance(d, ml_collections.ConfigDict):
      d = d.to_dict()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise ConfigError(f"{field}.{unknown[0]}: unknown model field (known: {', '.join(sorted(names))})")
    rs = d.get("rope_scaling")
    d = dict(d, rope_scaling=dict(rs) if rs else None)
    try:
      cfg = cls(**d)
    except TypeError as e:
      raise ConfigError(f"{field}: {e}") from None
    cfg.validate(field)
    return cfg

  def validate(self, field: str = "model") -> None:
    positive = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "max_position_embeddings")
    for name in positive:
      v = getattr(self, name)
      if not isinstance(v, int) or v <= 0:
        raise ConfigError(f"{field}.{name}={v!r}: must be a positive integer")
    if self.num_attention_heads % self.num_key_value_heads:
      raise ConfigError(
          f"{field}.num_attention_heads={self.num_attention_heads} is not a multiple of "
          f"{field}.num_key_value_heads={self.num_key_value_heads}")
    if self.head_dim is None and self.hidden_size % self.num_attention_heads:
      raise ConfigError(f"{field}.hidden_size={self.hidden_size} is not divisible by "
                        f"{field}.num_attention_heads={self.num_attention_heads}; set {field}.head_dim")
    if self.resolved_head_dim % 2:
      raise ConfigError(f"{field}.head_dim={self.resolved_head_dim}: RoPE needs an even head dim")
    if self.remat_policy not in REMAT_POLICIES:
      raise ConfigError(f"{field}.remat_policy={self.remat_policy!r}: choose one of {REMAT_POLICIES}")
    if self.attention_impl not in ATTENTION_IMPLS:
      raise ConfigError(f"{field}.attention_impl={self.attention_impl!r}: choose one of {ATTENTION_IMPLS}")
    if self.quant not in QUANT_MODES:
      raise ConfigError(f"{field}.quant={self.quant!r}: choose one of {QUANT_MODES}")
    if not isinstance(self.quant_group_size, int) or self.quant_group_size < 0:
      raise ConfigError(f"{field}.quant_group_size={self.quant_group_size!r}: must be an integer >= 0")
    if not isinstance(self.lora_rank, int) or self.lora_rank < 0:
      raise ConfigError(f"{field}.lora_rank={self.lora_rank!r}: an integer >= 0 (0: no adapters)")
    if self.lora_rank:
      if not self.lora_alpha > 0:
        raise ConfigError(f"{field}.lora_alpha={self.lora_alpha!r}: must be > 0")
      if not 0 <= self.lora_dropout < 1:
        raise ConfigError(f"{field}.lora_dropout={self.lora_dropout!r}: in [0, 1)")
      try:
        lora.targeted(self.lora_targets, f"{field}.lora_targets")
      except ValueError as e:
        raise ConfigError(str(e)) from None
    for name in ("dtype", "param_dtype"):
      if getattr(self, name) not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"{field}.{name}={getattr(self, name)!r}: use float32, bfloat16 or float16")
    if self.rope_scaling:
      kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type", "default"))
      if kind not in ROPE_TYPES:
        raise ConfigError(f"{field}.rope_scaling.rope_type={kind!r}: choose one of {ROPE_TYPES}")
      if kind != "default" and "factor" not in self.rope_scaling:
        raise ConfigError(f"{field}.rope_scaling.factor: required for rope_type={kind!r}")

  # --- sizes -------------------------------------------------------------------------------------

  def param_count(self, include_embeddings: bool = True) -> int:
    d, f, h = self.hidden_size, self.intermediate_size, self.resolved_head_dim
    n, k = self.num_attention_heads, self.num_key_value_heads
    per_layer = d * n * h * 2 + d * k * h * 2 + 3 * d * f + 2 * d
    body = self.num_hidden_layers * per_layer + d
    head = d * self.vocab_size
    emb = d * self.vocab_size
    return body + head + (emb if include_embeddings else 0)

  def flops_per_token(self, seq_len: int, training: bool = True, causal: bool = True) -> float:
    """Model FLOPs per token (the MFU numerator, as in the PaLM appendix).

    Matmuls cost 2 FLOPs per weight per token (the embedding lookup is free); attention scores and
    the weighted sum cost 2 * 2 * T * N * H per layer, halved for a causal mask. Training is 3x the
    forward pass (forward, and backward for activations and weights); remat recompute is not
    counted, as MFU conventionally excludes it.
    """
    matmul_params = self.param_count(include_embeddings=False) - (2 * self.num_hidden_layers + 1) * self.hidden_size
    attn = 4 * seq_len * self.num_attention_heads * self.resolved_head_dim * self.num_hidden_layers
    if causal:
      attn /= 2
    forward = 2 * matmul_params + attn
    return 3 * forward if training else forward
