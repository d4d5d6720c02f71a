"""PPO arithmetic as pure functions over [B, T] response-aligned arrays (../shared/rlhf.md).

Index t runs over response tokens; `mask[b, t] = 1` on response tokens up to and including the
`</s>` (or the last generated token when the answer hit the length limit). Everything here is
float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1e-8)


def kl_estimate(logp: jax.Array, logp_ref: jax.Array, estimator: str = "k1") -> jax.Array:
  """Per-token KL(actor || reference): k1 = log ratio; k3 = exp(-log ratio) - 1 + log ratio."""
  log_ratio = logp - logp_ref
  if estimator == "k1":
    return log_ratio
  if estimator == "k3":
    return jnp.exp(-log_ratio) - 1.0 + log_ratio
  raise ValueError(f"ppo.kl_estimator={estimator!r}: use k1 or k3")


def last_index(mask: jax.Array) -> jax.Array:
  """Index of each row's last response token."""
  return jnp.maximum(jnp.sum(mask, axis=1).astype(jnp.int32) - 1, 0)


def token_rewards(logp, logp_ref, mask, score, kl_coef, clip_reward: float, estimator: str = "k1"):
  """r_t = -beta * KL_t on every response token, plus clip(R, -c, c) on the last one."""
  mask = jnp.asarray(mask, jnp.float32)
  rewards = -kl_coef * kl_estimate(jnp.asarray(logp), jnp.asarray(logp_ref), estimator) * mask
  clipped = jnp.clip(score.astype(jnp.float32), -clip_reward, clip_reward)
  rows = jnp.arange(rewards.shape[0])
  return rewards.at[rows, last_index(mask)].add(clipped)


def gae(rewards, values, mask, gamma: float = 1.0, lam: float = 0.95):
  """Generalised advantage estimation backwards over the response, with V_{T+1} = 0.

  delta_t = r_t + gamma * V_{t+1} - V_t;  A_t = delta_t + gamma * lam * A_{t+1};  G_t = A_t + V_t.
  Positions after the last response token carry no reward and no value.
  """
  mask = mask.astype(jnp.float32)
  rewards, values = rewards * mask, values * mask
  next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1)
  deltas = rewards + gamma * next_values - values

  def step(next_adv, delta_t):
    adv = delta_t + gamma * lam * next_adv
    return adv, adv

  _, adv = jax.lax.scan(step, jnp.zeros(rewards.shape[0]), deltas.T, reverse=True)
  advantages = adv.T * mask
  return advantages, (advantages + values) * mask


def whiten(x, mask, eps: float = 1e-8):
  """(x - masked mean) / masked std over every masked token of the batch (population std)."""
  mean = masked_mean(x, mask)
  var = masked_mean(jnp.square(x - mean), mask)
  return (x - mean) * jax.lax.rsqrt(var + eps) * mask


def policy_loss_sums(logp_new, logp_old, advantages, mask, clip_eps: float = 0.2):
  """Clipped surrogate summed over masked tokens: sum of max(-A * ratio, -A * clip(ratio, 1 - eps,
  1 + eps)), with its statistics as sums (and the largest |ratio - 1|), so micro-batches add."""
  ratio = jnp.exp(logp_new - logp_old)
  unclipped = -advantages * ratio
  clipped = -advantages * jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
  loss = jnp.sum(jnp.maximum(unclipped, clipped) * mask)
  stats = {"policy_clipfrac_sum": jnp.sum((clipped > unclipped).astype(jnp.float32) * mask),
           "approx_kl_sum": 0.5 * jnp.sum(jnp.square(logp_new - logp_old) * mask),
           "ratio_dev_max": jnp.max(jnp.abs(ratio - 1.0) * mask)}
  return loss, stats


def policy_loss(logp_new, logp_old, advantages, mask, clip_eps: float = 0.2):
  """The clipped surrogate's masked mean, and its statistics as means."""
  total, sums = policy_loss_sums(logp_new, logp_old, advantages, mask, clip_eps)
  n = jnp.maximum(jnp.sum(mask), 1e-8)
  return total / n, {"policy_clipfrac": sums["policy_clipfrac_sum"] / n,
                     "approx_kl": sums["approx_kl_sum"] / n, "ratio_max_dev": sums["ratio_dev_max"]}


def value_loss_sums(values_new, values_old, returns, mask, clip_eps: float = 0.2):
  """0.5 * sum over masked tokens of max((V - G)^2, (clip(V, V_old - eps, V_old + eps) - G)^2)."""
  v_clip = jnp.clip(values_new, values_old - clip_eps, values_old + clip_eps)
  a, b = jnp.square(values_new - returns), jnp.square(v_clip - returns)
  return 0.5 * jnp.sum(jnp.maximum(a, b) * mask), {
      "value_clipfrac_sum": jnp.sum((b > a).astype(jnp.float32) * mask)}


def value_loss(values_new, values_old, returns, mask, clip_eps: float = 0.2):
  """The clipped value loss's masked mean (0.5 * mean of the larger squared error)."""
  total, sums = value_loss_sums(values_new, values_old, returns, mask, clip_eps)
  n = jnp.maximum(jnp.sum(mask), 1e-8)
  return total / n, {"value_clipfrac": sums["value_clipfrac_sum"] / n}


def adaptive_kl(kl_coef, observed_kl, target: float, horizon: float, n_samples: int):
  """Ziegler et al.'s proportional controller: beta *= 1 + clip(KL/target - 1, +-0.2) * n / horizon."""
  error = jnp.clip(observed_kl / target - 1.0, -0.2, 0.2)
  return kl_coef * (1.0 + error * n_samples / horizon)


def response_logprobs(logits, tokens, temperature: float = 1.0):
  """Log-probs (float32) of `tokens` [B, N] under `logits` [B, N, V] scaled by 1/temperature,
  plus the per-token entropy of that distribution."""
  logp_all = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  logp = jnp.take_along_axis(logp_all, tokens[..., None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  return logp, entropy
