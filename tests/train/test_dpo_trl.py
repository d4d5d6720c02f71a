"""DPO's loss and metrics against TRL's own code (`DPOTrainer._compute_loss`) on the same log-probs.

TRL computes the loss inside its trainer, from a model's outputs; here it runs on a stand-in trainer
and a stand-in model that returns our per-token answer log-probs, with the reference log-probs
precomputed (TRL's `precompute_ref_log_probs` path). TRL orders a batch [chosen..., rejected...];
ours interleaves chosen and rejected rows.
"""

from collections import defaultdict
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import trl

from tests.train.test_dpo import FakeModel
from xy_jax.train.dpo import METRICS, dpo_metrics, make_loss_sums


def _per_token_logps(logits, tokens, mask):
  logits = logits.astype(np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  logp_all = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  targets = np.concatenate([tokens[:, 1:], np.zeros_like(tokens[:, :1])], axis=1)
  return np.take_along_axis(logp_all, targets[..., None], -1)[..., 0] * mask  # [rows, T]: t predicts t+1


def _trl_loss(loss, beta, logits, tokens, mask, ref_logp):
  order = np.concatenate([np.arange(0, len(tokens), 2), np.arange(1, len(tokens), 2)])  # chosen first
  tok_logp = _per_token_logps(logits, tokens, mask)[order]
  completion_mask = np.concatenate([np.zeros_like(mask[:, :1]), mask[:, :-1]], axis=1)[order]  # token t+1
  outputs = SimpleNamespace(log_probs=torch.tensor(tok_logp[:, :-1]), entropy=torch.zeros(tok_logp[:, :-1].shape),
                            mean_logits=torch.zeros(tok_logp[:, :-1].shape),
                            is_top1=torch.zeros(tok_logp[:, :-1].shape, dtype=torch.bool))
  trainer = SimpleNamespace(
      model=SimpleNamespace(training=True), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
      f_divergence_type="reverse_kl", loss_types=[loss], loss_weights=[1.0], beta=beta, label_smoothing=0.0,
      use_weighting=False, _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1,
      accelerator=SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x))
  ref = ref_logp.astype(np.float64)
  inputs = {"input_ids": torch.tensor(tokens[order], dtype=torch.long),
            "attention_mask": torch.ones(tokens.shape, dtype=torch.long),
            "completion_mask": torch.tensor(completion_mask, dtype=torch.long),
            "ref_chosen_logps": torch.tensor(ref[0::2]), "ref_rejected_logps": torch.tensor(ref[1::2])}
  value = trl.DPOTrainer._compute_loss(trainer, lambda **_: outputs, inputs, return_outputs=False)
  return float(value), {k: v[-1] for k, v in trainer._metrics["train"].items()}


@pytest.mark.parametrize("loss", ["sigmoid", "ipo", "hinge"])
def test_loss_and_metrics_equal_trls(loss):
  rng = np.random.default_rng(1)
  rows, T, V = 10, 14, 9
  logits = (rng.normal(size=(rows, T, V)) * 2).astype(np.float32)
  tokens = rng.integers(0, V, size=(rows, T)).astype(np.int32)
  starts, ends = rng.integers(2, 6, size=rows), rng.integers(7, T - 1, size=rows)
  mask = ((np.arange(T)[None] >= starts[:, None]) & (np.arange(T)[None] < ends[:, None])).astype(np.int32)
  ref_logp = (rng.normal(size=rows) * 3 - 15).astype(np.float32)
  batch = {"tokens": tokens, "positions": np.zeros_like(tokens), "segment_ids": np.ones_like(tokens),
           "loss_mask": mask, "weight": np.ones(rows, np.float32), "ref_logp": ref_logp}
  sums = make_loss_sums(0.2, loss, 0.0)(FakeModel(logits), {k: jnp.asarray(v) for k, v in batch.items()})
  want_loss, want = _trl_loss(loss, 0.2, logits, tokens, mask, ref_logp)
  np.testing.assert_allclose(float(sums["nll_sum"] / sums["count"]), want_loss, rtol=1e-5, atol=1e-5)
  got = dpo_metrics({k: float(v) for k, v in sums.items()})
  for k in METRICS:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-4, err_msg=k)
