"""Reward model vs transformers' LlamaForSequenceClassification, and the HF round trip."""

import jax.numpy as jnp
import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from xy_jax.convert.hf import export_hf
from xy_jax.weights.write import import_hf
from xy_jax.data.tokenizer import DEFAULT_ASSET
from xy_jax.models.factory import init_model
from xy_jax.weights.load import load_checkpoint
from xy_jax.models.presets import get_preset
from xy_jax.models.reward import RewardModel, sequence_scores

QUIET = lambda *_: None  # noqa: E731
CFG = get_preset("tiny", pad_token_id=3, num_key_value_heads=1, rope_theta=20000.0)


def _right_padded(lengths, width=40, seed=0):
  rng = np.random.default_rng(seed)
  tokens = np.full((len(lengths), width), 3, np.int32)
  seg = np.zeros_like(tokens)
  for i, n in enumerate(lengths):
    tokens[i, :n] = rng.integers(4, CFG.vocab_size, n)
    seg[i, :n] = 1
  return tokens, seg


def _ours(model, tokens, seg):
  values, _ = model(jnp.asarray(tokens), None, jnp.asarray(seg))
  return np.asarray(sequence_scores(values, jnp.asarray(seg)))


def test_exported_reward_model_scores_match_transformers(tmp_path, one_device_sharding):
  model = init_model(RewardModel, CFG, one_device_sharding, seed=5)
  out = str(tmp_path / "rm")
  export_hf(model, CFG, out, kind="reward", tokenizer_file=DEFAULT_ASSET, log=QUIET)
  hf = AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32).eval()
  assert hf.config.num_labels == 1 and hf.config.pad_token_id == 3
  tokens, seg = _right_padded([3, 11, 40, 25])
  with torch.no_grad():
    ref = hf(torch.as_tensor(tokens, dtype=torch.long)).logits[:, 0].numpy()  # finds last non-pad
  ours = _ours(model, tokens, seg)
  assert np.abs(ours - ref).max() <= 1e-4, (ours, ref)

  # ...and back in: import detects the architecture and gives the same scores.
  ckpt = str(tmp_path / "ckpt")
  import_hf(out, ckpt, one_device_sharding, log=QUIET)
  loaded = load_checkpoint(ckpt, one_device_sharding, dtype="float32")
  assert loaded.kind == "reward"
  np.testing.assert_allclose(_ours(loaded.model, tokens, seg), ours, atol=1e-6)
