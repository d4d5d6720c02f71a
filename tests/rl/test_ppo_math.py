"""PPO math against an independent numpy transcription of ../shared/rlhf.md, on random masked
batches whose answers have different lengths (1e-6)."""

import numpy as np
import pytest

from xy_jax.rl import ppo_math

B, T = 6, 11
RNG = np.random.default_rng(0)


def _batch():
  lengths = np.array([1, 3, 11, 7, 5, 9])
  mask = (np.arange(T)[None] < lengths[:, None]).astype(np.float32)
  logp = RNG.normal(-2, 1, (B, T)).astype(np.float32)
  logp_ref = (logp + RNG.normal(0, 0.3, (B, T))).astype(np.float32)
  values = RNG.normal(0, 1, (B, T)).astype(np.float32)
  score = np.array([7.5, -0.3, 2.0, -9.0, 0.1, 4.9], np.float32)  # some beyond the clip
  return lengths, mask, logp, logp_ref, values, score


# ---- the numpy transcription (loops, written from the notes, not from our code) ----------------

def np_rewards(logp, logp_ref, mask, score, beta, c, k3=False):
  r = np.zeros((B, T), np.float64)
  for b in range(B):
    last = int(mask[b].sum()) - 1
    for t in range(last + 1):
      lr = logp[b, t] - logp_ref[b, t]
      kl = (np.exp(-lr) - 1 + lr) if k3 else lr
      r[b, t] = -beta * kl
    r[b, last] += min(max(score[b], -c), c)
  return r


def np_gae(r, v, mask, gamma, lam):
  adv = np.zeros((B, T))
  for b in range(B):
    n = int(mask[b].sum())
    next_adv, next_v = 0.0, 0.0  # V_{T+1} = 0
    for t in reversed(range(n)):
      delta = r[b, t] + gamma * next_v - v[b, t]
      next_adv = delta + gamma * lam * next_adv
      adv[b, t] = next_adv
      next_v = v[b, t]
  ret = (adv + v) * mask
  return adv, ret


def np_masked_mean(x, m):
  return (x * m).sum() / m.sum()


def np_policy_loss(new, old, a, m, eps):
  ratio = np.exp(new - old)
  return np_masked_mean(np.maximum(-a * ratio, -a * np.clip(ratio, 1 - eps, 1 + eps)), m)


def np_value_loss(v, v_old, g, m, eps):
  vc = np.clip(v, v_old - eps, v_old + eps)
  return 0.5 * np_masked_mean(np.maximum((v - g) ** 2, (vc - g) ** 2), m)


@pytest.mark.parametrize("k3", [False, True])
def test_rewards_with_kl_and_clipping(k3):
  _, mask, logp, logp_ref, _, score = _batch()
  ours = ppo_math.token_rewards(logp, logp_ref, mask, score, 0.1, 5.0, "k3" if k3 else "k1")
  np.testing.assert_allclose(np.asarray(ours), np_rewards(logp, logp_ref, mask, score, 0.1, 5.0, k3),
                             atol=1e-6)


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.99, 0.9)])
def test_gae_and_returns(gamma, lam):
  _, mask, logp, logp_ref, values, score = _batch()
  r = np_rewards(logp, logp_ref, mask, score, 0.1, 5.0)
  adv, ret = ppo_math.gae(r.astype(np.float32), values, mask, gamma, lam)
  np_adv, np_ret = np_gae(r, values, mask, gamma, lam)
  np.testing.assert_allclose(np.asarray(adv), np_adv, atol=1e-5)
  np.testing.assert_allclose(np.asarray(ret), np_ret, atol=1e-5)
  assert (np.asarray(adv)[mask == 0] == 0).all()  # nothing after the last response token


def test_whitening():
  _, mask, _, _, values, _ = _batch()
  w = np.asarray(ppo_math.whiten(values, mask))
  sel = values[mask > 0]
  np.testing.assert_allclose(w[mask > 0], (sel - sel.mean()) / sel.std(), atol=1e-5)


def test_policy_and_value_losses():
  _, mask, logp, _, values, _ = _batch()
  new = logp + RNG.normal(0, 0.3, logp.shape).astype(np.float32)
  adv = RNG.normal(0, 1, logp.shape).astype(np.float32)
  loss, stats = ppo_math.policy_loss(new, logp, adv, mask, 0.2)
  np.testing.assert_allclose(float(loss), np_policy_loss(new, logp, adv, mask, 0.2), atol=1e-6)
  v_new = values + RNG.normal(0, 0.5, values.shape).astype(np.float32)
  g = RNG.normal(0, 1, values.shape).astype(np.float32)
  vloss, vstats = ppo_math.value_loss(v_new, values, g, mask, 0.2)
  np.testing.assert_allclose(float(vloss), np_value_loss(v_new, values, g, mask, 0.2), atol=1e-6)
  assert 0 < float(stats["policy_clipfrac"]) < 1 and 0 < float(vstats["value_clipfrac"]) < 1
  same, s = ppo_math.policy_loss(logp, logp, adv, mask)
  assert float(s["ratio_max_dev"]) == 0.0
  np.testing.assert_allclose(float(same), -np_masked_mean(adv, mask), atol=1e-6)


def test_adaptive_kl_controller():
  # Ziegler et al.: observed KL above target raises beta, proportionally, capped at 20%.
  assert float(ppo_math.adaptive_kl(0.1, 12.0, 6.0, 10000, 256)) == pytest.approx(0.1 * (1 + 0.2 * 256 / 10000))
  assert float(ppo_math.adaptive_kl(0.1, 5.4, 6.0, 10000, 256)) == pytest.approx(0.1 * (1 - 0.1 * 256 / 10000))


def test_response_logprobs_and_entropy():
  logits = RNG.normal(0, 2, (2, 3, 7)).astype(np.float32)
  tokens = RNG.integers(0, 7, (2, 3))
  logp, ent = ppo_math.response_logprobs(logits, tokens, temperature=0.7)
  scaled = logits / 0.7
  p = np.exp(scaled - scaled.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  np.testing.assert_allclose(np.asarray(logp), np.log(np.take_along_axis(p, tokens[..., None], -1))[..., 0],
                             atol=1e-5)
  np.testing.assert_allclose(np.asarray(ent), -(p * np.log(p)).sum(-1), atol=1e-5)
