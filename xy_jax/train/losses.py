"""Token-level losses. Sums are returned with their counts so accumulation stays exact."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def next_token_nll(logits: jax.Array, tokens: jax.Array, loss_mask: jax.Array):
  """Per-position NLL of predicting tokens[t+1] at t, masked. logits [B,T,V] float32.

  Returns (nll [B,T] with zeros where masked, log-partition [B,T]).
  """
  targets = jnp.concatenate([tokens[:, 1:], jnp.zeros_like(tokens[:, :1])], axis=1)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  mask = loss_mask.astype(jnp.float32)
  return (log_z - target_logit) * mask, log_z


def lm_loss_sums(logits, tokens, loss_mask, z_loss: float = 0.0) -> dict[str, jax.Array]:
  """{'nll_sum', 'z_sum', 'count'}: the objective is (nll_sum + z_loss * z_sum) / count."""
  nll, log_z = next_token_nll(logits, tokens, loss_mask)
  mask = loss_mask.astype(jnp.float32)
  out = {"nll_sum": jnp.sum(nll), "count": jnp.sum(mask)}
  out["z_sum"] = jnp.sum(jnp.square(log_z) * mask) if z_loss else jnp.zeros((), jnp.float32)
  return out


def lm_loss(z_loss: float, sft_sources: tuple[int, ...] = ()):
  """Next-token loss; with `sft_sources`, the sums are also split into SFT and LM rows."""

  def loss_sums(model, batch):
    logits, _ = model(batch["tokens"], batch["positions"], batch["segment_ids"])
    sums = lm_loss_sums(logits, batch["tokens"], batch["loss_mask"], z_loss)
    if sft_sources:
      nll, _ = next_token_nll(logits, batch["tokens"], batch["loss_mask"])
      is_sft = jnp.isin(batch["source"], jnp.asarray(sft_sources))[:, None]
      mask = batch["loss_mask"].astype(jnp.float32)
      sums.update(sft_nll_sum=jnp.sum(jnp.where(is_sft, nll, 0.0)),
                  sft_count=jnp.sum(jnp.where(is_sft, mask, 0.0)),
                  lm_nll_sum=jnp.sum(jnp.where(is_sft, 0.0, nll)),
                  lm_count=jnp.sum(jnp.where(is_sft, 0.0, mask)))
    return sums

  return loss_sums
