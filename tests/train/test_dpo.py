"""DPO's losses and TRL-named metrics against a numpy transcription of the published formulas
(Rafailov et al. 2023; IPO: Azar et al. 2023, on per-token averaged log-probs as TRL computes them,
its metrics on summed log-probs as TRL reports them; hinge: SLiC), on random logits. TRL's own code:
test_dpo_trl.py."""

import jax.numpy as jnp
import numpy as np
import pytest

from xy_jax.train.dpo import METRICS, dpo_metrics, make_loss_sums


def _log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


def np_dpo(logits, tokens, mask, ref_logp, weight, beta, loss, eps):
  logits = logits.astype(np.float64)
  logp_all = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
      - logits.max(-1, keepdims=True)
  targets = np.concatenate([tokens[:, 1:], np.zeros_like(tokens[:, :1])], axis=1)
  tok_logp = np.take_along_axis(logp_all, targets[..., None], -1)[..., 0]
  logp = (tok_logp * mask).sum(1)
  ref = ref_logp.astype(np.float64)
  pc, pr, rc, rr, w = logp[0::2], logp[1::2], ref[0::2], ref[1::2], weight[0::2]
  h = (pc - pr) - (rc - rr)
  if loss == "sigmoid":
    per_pair = -(1 - eps) * _log_sigmoid(beta * h) - eps * _log_sigmoid(-beta * h)
  elif loss == "ipo":  # on per-token averages; the metrics below stay on sums
    n = mask.sum(1)
    h_avg = (pc / n[0::2] - pr / n[1::2]) - (rc / n[0::2] - rr / n[1::2])
    per_pair = (h_avg - 1 / (2 * beta)) ** 2
  else:
    per_pair = np.maximum(0.0, 1 - beta * h)
  chosen, rejected = beta * (pc - rc), beta * (pr - rr)
  n = w.sum()
  return (per_pair * w).sum() / n, {
      "rewards/chosen": (chosen * w).sum() / n, "rewards/rejected": (rejected * w).sum() / n,
      "rewards/accuracies": ((chosen > rejected) * w).sum() / n,
      "rewards/margins": ((chosen - rejected) * w).sum() / n,
      "logps/chosen": (pc * w).sum() / n, "logps/rejected": (pr * w).sum() / n}


class FakeModel:
  def __init__(self, logits):
    self.logits = logits

  def __call__(self, tokens, positions, segment_ids):
    return jnp.asarray(self.logits), None


@pytest.mark.parametrize("loss,eps", [("sigmoid", 0.0), ("sigmoid", 0.1), ("ipo", 0.0), ("hinge", 0.0)])
def test_loss_and_metrics_match_the_transcription(loss, eps):
  rng = np.random.default_rng(0)
  rows, T, V = 12, 16, 11
  logits = rng.normal(size=(rows, T, V)).astype(np.float32) * 2
  tokens = rng.integers(0, V, size=(rows, T)).astype(np.int32)
  starts, ends = rng.integers(2, 6, size=rows), rng.integers(8, T - 1, size=rows)
  mask = ((np.arange(T)[None] >= starts[:, None]) & (np.arange(T)[None] < ends[:, None])).astype(np.int32)
  weight = np.repeat([1, 1, 1, 1, 1, 0], 2).astype(np.float32)  # the last pair is filler
  ref_logp = (rng.normal(size=rows) * 3 - 20).astype(np.float32)
  batch = {"tokens": tokens, "positions": np.zeros_like(tokens), "segment_ids": np.ones_like(tokens),
           "loss_mask": mask, "weight": weight, "ref_logp": ref_logp}
  sums = make_loss_sums(0.3, loss, eps)(FakeModel(logits), {k: jnp.asarray(v) for k, v in batch.items()})
  want_loss, want_metrics = np_dpo(logits, tokens, mask, ref_logp, weight, 0.3, loss, eps)
  np.testing.assert_allclose(float(sums["nll_sum"] / sums["count"]), want_loss, rtol=1e-6, atol=1e-6)
  got = dpo_metrics({k: float(v) for k, v in sums.items()})
  for k in METRICS:
    np.testing.assert_allclose(got[k], want_metrics[k], rtol=1e-6, atol=1e-5, err_msg=k)


def test_the_answer_mask_covers_exactly_the_answer_tokens():
  from xy_jax.data.preference import Pairs, pair_batch
  pairs = Pairs([np.arange(1, 9)], [np.arange(1, 7)], [5])  # prompt: 5 tokens; answers 3 and 1
  b = pair_batch(pairs, [0], 12, 0, answer_mask=True)
  # position t predicts token t+1: answers start at index 5, so positions 4.. up to len-2
  assert b["loss_mask"][0].tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
  assert b["loss_mask"][1].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
