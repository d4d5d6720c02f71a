"""XuanYuan-6B's reward loss: DeepSpeed-Chat's token-level contrastive loss, against a numpy
transcription of DeepSpeed-Chat's `RewardModel.forward` loop (dschat/utils/model/reward_model.py)."""

import jax.numpy as jnp
import numpy as np
import pytest

from xy_jax.train.reward import token_contrastive_loss_sums

PAD = 0


def _log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


def deepspeed_chat_loss(input_ids, rewards, pad_id=PAD, num_padding_at_beginning=0):
  """Transcribed loop: chosen rows first, rejected rows second (DeepSpeed-Chat's batch layout)."""
  bs = input_ids.shape[0] // 2
  seq_len = input_ids.shape[1]
  chosen_ids, rejected_ids = input_ids[:bs], input_ids[bs:]
  chosen_rewards, rejected_rewards = rewards[:bs], rewards[bs:]
  loss, chosen_end, rejected_end = 0.0, [], []
  for i in range(bs):
    chosen_id, rejected_id = chosen_ids[i], rejected_ids[i]
    chosen_reward, rejected_reward = chosen_rewards[i], rejected_rewards[i]
    c_inds = np.nonzero(chosen_id == pad_id)[0]
    c_ind = c_inds[num_padding_at_beginning] if len(c_inds) > num_padding_at_beginning else seq_len
    check_divergence = np.nonzero(chosen_id != rejected_id)[0]
    if len(check_divergence) == 0:
      end_ind = rejected_reward.shape[-1]
      divergence_ind = end_ind - 1
      r_ind = c_ind
    else:
      r_inds = np.nonzero(rejected_id == pad_id)[0]
      r_ind = r_inds[num_padding_at_beginning] if len(r_inds) > num_padding_at_beginning else seq_len
      end_ind = max(c_ind, r_ind)
      divergence_ind = check_divergence[0]
    assert divergence_ind > 0
    c_truncated = chosen_reward[divergence_ind:end_ind]
    r_truncated = rejected_reward[divergence_ind:end_ind]
    chosen_end.append(chosen_reward[c_ind - 1])
    rejected_end.append(rejected_reward[r_ind - 1])
    loss += -_log_sigmoid(c_truncated - r_truncated).mean()
  return loss / bs, np.array(chosen_end), np.array(rejected_end)


def _pairs(rng, T=24):
  """Pairs covering every branch: different lengths either way, a prefix of the other, divergence
  on the last real token, identical answers, no padding at all, one padded one not."""
  shapes = [(10, 16, 6), (16, 10, 6), (12, 18, 12), (18, 12, 12), (9, 9, 8), (14, 14, None),
            (T, T, 20), (T, 15, 7), (11, T, 5)]  # (chosen length, rejected length, divergence)
  chosen, rejected = [], []
  for lc, lr, div in shapes:
    prompt = rng.integers(3, 60, size=T)
    c, r = prompt.copy(), prompt.copy()
    if div is not None:
      r[div:] = rng.integers(3, 60, size=T - div)
      r[div] = c[div] + 1  # differ exactly at div
    c[lc:], r[lr:] = PAD, PAD
    chosen.append(c)
    rejected.append(r)
  return np.array(chosen, np.int32), np.array(rejected, np.int32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_deepspeed_chat(seed):
  rng = np.random.default_rng(seed)
  chosen, rejected = _pairs(rng)
  n, T = chosen.shape
  values_c = rng.normal(size=(n, T)).astype(np.float32) * 3
  values_r = rng.normal(size=(n, T)).astype(np.float32) * 3
  want, want_c, want_r = deepspeed_chat_loss(np.concatenate([chosen, rejected]),
                                             np.concatenate([values_c, values_r]))
  # Our layout: chosen at even rows, rejected at odd; padding is segment id 0.
  tokens = np.stack([chosen, rejected], 1).reshape(2 * n, T)
  values = np.stack([values_c, values_r], 1).reshape(2 * n, T)
  segment_ids = (tokens != PAD).astype(np.int32)
  weight = np.ones(2 * n, np.float32)
  sums = token_contrastive_loss_sums(jnp.asarray(values), jnp.asarray(tokens), jnp.asarray(segment_ids),
                                     jnp.asarray(weight))
  np.testing.assert_allclose(float(sums["nll_sum"] / sums["count"]), want, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(float(sums["chosen_sum"]), want_c.sum(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(float(sums["rejected_sum"]), want_r.sum(), rtol=1e-5, atol=1e-5)
  assert float(sums["correct_sum"]) == float(np.sum(want_c > want_r))


def test_filler_pairs_weigh_nothing_and_the_span_is_not_the_last_token_loss():
  rng = np.random.default_rng(3)
  chosen, rejected = _pairs(rng)
  n, T = chosen.shape
  tokens = np.stack([chosen, rejected], 1).reshape(2 * n, T)
  values = rng.normal(size=(2 * n, T)).astype(np.float32)
  seg = (tokens != PAD).astype(np.int32)
  w = np.repeat((np.arange(n) < 4).astype(np.float32), 2)
  full = token_contrastive_loss_sums(jnp.asarray(values), jnp.asarray(tokens), jnp.asarray(seg),
                                     jnp.asarray(w))
  first4 = token_contrastive_loss_sums(jnp.asarray(values[:8]), jnp.asarray(tokens[:8]),
                                       jnp.asarray(seg[:8]), jnp.asarray(w[:8]))
  np.testing.assert_allclose(float(full["nll_sum"]), float(first4["nll_sum"]), rtol=1e-6)
  assert float(full["count"]) == 4.0
  want, *_ = deepspeed_chat_loss(np.concatenate([chosen[:4], rejected[:4]]),
                                 np.concatenate([values[0:8:2], values[1:8:2]]))
  last_token = np.mean([-_log_sigmoid(values[2 * i, seg[2 * i].sum() - 1] - values[2 * i + 1, seg[2 * i + 1].sum() - 1])
                        for i in range(4)])
  np.testing.assert_allclose(float(full["nll_sum"]) / 4, want, rtol=1e-6)
  assert abs(want - last_token) > 1e-3  # the two losses differ on this data
