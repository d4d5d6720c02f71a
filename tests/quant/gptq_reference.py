"""A numpy transcription of GPTQ's `fasterquant` (IST-DASLab gptq.py as extended by AutoGPTQ with
static groups and act-order), in GPTQ's own orientation: W [out, in], H [in, in], columns = inputs.

Written from the published algorithm, line for line, with a symmetric quantiser whose grid the
caller gives (lo, hi, absmax / scale), so that it checks `xy_jax.quant.gptq` and nothing else.
"""

import numpy as np


def find_scale(w, divisor):
  amax = np.abs(w).max(axis=1)
  return np.where(amax == 0, 1.0, amax).astype(np.float32) / np.float32(divisor)


def fasterquant(W, H, grid, group_size=-1, blocksize=128, percdamp=0.01, actorder=False,
                static_groups=False):
  lo, hi, divisor = grid
  W = W.astype(np.float32).copy()
  H = H.astype(np.float32).copy()
  columns = W.shape[1]
  dead = np.diag(H) == 0
  H[dead, dead] = 1
  W[:, dead] = 0
  scale = find_scale(W, divisor)  # per-channel unless groups replace it
  groups = []
  if static_groups:
    for i in range(0, columns, group_size):
      groups.append(find_scale(W[:, i:i + group_size], divisor))
  if actorder:
    perm = np.argsort(-np.diag(H), kind="stable")
    W = W[:, perm]
    H = H[perm][:, perm]
    invperm = np.argsort(perm)
  Q = np.zeros_like(W)
  damp = percdamp * np.mean(np.diag(H))
  H[np.arange(columns), np.arange(columns)] += damp
  L = np.linalg.cholesky(H.astype(np.float64))
  Hinv = np.linalg.cholesky(np.linalg.inv(L @ L.T)).T.astype(np.float32)  # upper
  scales = []
  loss = 0.0
  for i1 in range(0, columns, blocksize):
    i2 = min(i1 + blocksize, columns)
    W1 = W[:, i1:i2].copy()
    Q1 = np.zeros_like(W1)
    Err1 = np.zeros_like(W1)
    Hinv1 = Hinv[i1:i2, i1:i2]
    for i in range(i2 - i1):
      w = W1[:, i]
      d = Hinv1[i, i]
      if group_size != -1:
        if not static_groups:
          if (i1 + i) % group_size == 0:
            scale = find_scale(W[:, i1 + i:i1 + i + group_size], divisor)
            scales.append(scale)
        else:
          idx = perm[i1 + i] if actorder else i1 + i
          scale = groups[idx // group_size]
      q = np.clip(np.round(w / scale), lo, hi)
      Q1[:, i] = q
      err1 = (w - q * scale) / d
      loss += 0.5 * float(np.sum(err1 * err1))
      W1[:, i:] -= np.outer(err1, Hinv1[i, i:])
      Err1[:, i] = err1
    Q[:, i1:i2] = Q1
    W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
  if actorder:
    Q = Q[:, invperm]
  if group_size == -1:
    all_scales = scale[None]
  elif static_groups:
    all_scales = np.stack(groups)
  else:
    all_scales = np.stack(scales)
  return Q, all_scales, loss
