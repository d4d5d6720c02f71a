"""LoRA adapters on the decoder's projections (Hu et al. 2021), in PEFT's convention.

A targeted projection `y = x W` becomes `y = x W + (dropout(x) A) B * alpha / rank`, with A
[*contracted, rank] (PEFT's `lora_A`, uniform in +-1/sqrt(fan_in) as its kaiming default gives)
and B [rank, *out] (`lora_B`, zeros, so a fresh adapter changes nothing). The base W may be float
or integer (`ModelConfig.quant`: QLoRA); adapters are always float.

Why our own module rather than qwix's LoRA: qwix finds a module's weight by intercepting its
`dot_general` calls, and `llama.Weight` feeds the matmul a reshaped, cast view of its weight (and,
quantised, our own integer layout); the adapters must also map one-to-one onto PEFT's tensor names
for export. The math here is checked against `peft` itself (tests/convert/test_peft_adapter.py).

Dropout is a training-only concern of the gradient step, so its key is not a model argument every
stage's loss would have to pass on: the step opens `dropout_scope(key)` around the loss, and the
decoder reads the key while it is traced (like an rng collection, scoped to one trace).
"""

from __future__ import annotations

import contextlib
import re
import threading

import jax
import jax.numpy as jnp
from flax import nnx

# The projections LoRA may adapt (regex `ModelConfig.lora_targets` is fully matched against these
# names, as PEFT matches a string `target_modules`). Their order fixes each one's dropout stream.
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


class LoRAParam(nnx.Param):
  """An adapter matrix: the only parameters a LoRA run trains."""


def targeted(pattern: str, field: str = "lora.targets") -> tuple[str, ...]:
  """The projections `pattern` names (ValueError naming `field` when none or a bad regex)."""
  try:
    regex = re.compile(pattern)
  except (re.error, TypeError) as e:
    raise ValueError(f"{field}={pattern!r}: not a regular expression ({e})") from None
  hits = tuple(t for t in TARGETS if regex.fullmatch(t))
  if not hits:
    raise ValueError(f"{field}={pattern!r} matches none of {', '.join(TARGETS)}")
  return hits


def is_adapter_path(path: str) -> bool:
  """'model.layers.self_attn.q_proj.lora_a' -> True."""
  return path.rsplit(".", 1)[-1] in ("lora_a", "lora_b")


_scope = threading.local()


@contextlib.contextmanager
def dropout_scope(key: jax.Array | None):
  """Adapters traced inside apply dropout with streams folded from `key` (None: no dropout)."""
  previous = getattr(_scope, "key", None)
  _scope.key = key
  try:
    yield
  finally:
    _scope.key = previous


def dropout_key() -> jax.Array | None:
  return getattr(_scope, "key", None)


def init_a(key, shape, dtype):
  fan_in = 1
  for d in shape[:-1]:
    fan_in *= d
  bound = 1.0 / fan_in ** 0.5
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def delta(x2: jax.Array, a2: jax.Array, b2: jax.Array, scale: float, rate: float,
          key: jax.Array | None, dtype) -> jax.Array:
  """x2 [r, k] -> the adapter's [r, m] contribution (dropout on its input when `key` is given)."""
  if key is not None and rate > 0:
    keep = jax.random.bernoulli(key, 1.0 - rate, x2.shape)
    x2 = jnp.where(keep, x2 / (1.0 - rate), 0).astype(x2.dtype)
  h = jnp.dot(x2, a2.astype(dtype), preferred_element_type=jnp.float32).astype(dtype)
  return jnp.dot(h, b2.astype(dtype), preferred_element_type=jnp.float32) * scale


def merged_weight(w: jax.Array, a: jax.Array, b: jax.Array, n_in: int, scale: float) -> jax.Array:
  """W + scale * A B for one (possibly layer-stacked) float weight, computed in float32."""
  lead = (a.ndim - 1) + (b.ndim - 1) - w.ndim  # stacked layer axes in front
  k = 1
  for d in a.shape[lead:lead + n_in]:
    k *= d
  a2 = a.astype(jnp.float32).reshape(a.shape[:lead] + (k, a.shape[-1]))
  b2 = b.astype(jnp.float32).reshape(b.shape[:lead] + (b.shape[lead], -1))
  return (w.astype(jnp.float32) + scale * jnp.matmul(a2, b2).reshape(w.shape)).astype(w.dtype)
