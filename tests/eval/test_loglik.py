"""One forward pass per question gives each letter's log-likelihood as a full pass per letter does."""

import jax
import numpy as np
from flax import nnx

from xy_jax.eval.loglik import LoglikScorer, question_rows, shared_prefixes
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset


def _reference(model, ctx, cont, max_len):
  """log p(cont | ctx) from a full forward pass over one letter's own sequence."""
  seq = (ctx + cont)[-(max_len + 1):]
  logits = np.asarray(model(np.asarray([seq[:-1]]))[0][0], np.float64)
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
      - logits.max(-1, keepdims=True)
  return sum(logp[j - 1, seq[j]] for j in range(len(seq) - len(cont), len(seq)))


def test_shared_and_separate_rows_match_a_pass_per_letter(one_device_sharding):
  cfg = get_preset("tiny").replace(dtype="float32", max_position_embeddings=64)
  model = init_model(CausalLM, cfg, one_device_sharding, seed=3)
  rng = np.random.default_rng(0)
  shots = rng.integers(4, 2000, size=40).tolist()  # a few-shot prompt the group's questions share
  questions, groups = [], []
  for q in range(8):
    if q < 5:
      ctx = [1] + rng.integers(4, 2000, size=int(rng.integers(5, 90))).tolist()  # some longer than 64
    else:
      ctx = [1] + shots + rng.integers(4, 2000, size=int(rng.integers(2, 20))).tolist()
    groups.append("shots" if q >= 5 else f"alone{q}")
    if q % 2:  # " A" -> "▁", "A": the letters share all but their last token
      conts = [[29871, 319 + k] for k in range(4)]
    else:  # a letter that tokenizes differently: each letter needs its own row
      conts = [[319], [29871, 350], [315], [29871, 29871, 360]]
    questions.append((ctx, [[t % cfg.vocab_size for t in c] for c in conts]))
  rows = [r for q, (ctx, conts) in enumerate(questions)
          for r in question_rows(q, [(ctx, c) for c in conts], cfg.max_position_embeddings, groups[q])]
  assert len(rows) == 4 * 4 + 4 * 1
  plan = shared_prefixes(rows)
  shared = {len(prefix): sorted({r.question for r in rs}) for prefix, rs in plan if prefix}
  assert shared[41] == [5, 6, 7]  # BOS + the shots, run once for the three questions
  # A question whose letters need rows of their own shares its context among them.
  assert all(len(qs) == 1 and qs[0] % 2 == 0 for n, qs in shared.items() if n != 41)
  graphdef, params = nnx.split(model)
  scorer = LoglikScorer(graphdef, one_device_sharding, pad_id=0, max_len=cfg.max_position_embeddings,
                        batch_tokens=128)
  done = []
  got = scorer.score(params, rows, len(questions), done.append)
  assert sum(done) == len(questions)
  want = [[_reference(model, ctx, c, cfg.max_position_embeddings) for c in conts] for ctx, conts in questions]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_rows_shard_over_the_data_axes():
  from xy_jax.sharding import LogicalSharding, make_mesh
  sharding = LogicalSharding(make_mesh({"data": 2, "fsdp": 2, "tensor": 2}, jax.devices()[:8]))
  cfg = get_preset("tiny").replace(dtype="float32")
  model = init_model(CausalLM, cfg, sharding, seed=1)
  one = LogicalSharding(make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1]))
  single = init_model(CausalLM, cfg, one, seed=1)
  rows = question_rows(0, [([1, 5, 9, 13], [29871 % cfg.vocab_size, 20 + k]) for k in range(4)], 256)
  rows += question_rows(1, [([1, 7, 7], [30 + k]) for k in range(4)], 256)
  results = []
  for m, sh in ((model, sharding), (single, one)):
    graphdef, params = nnx.split(m)
    results.append(LoglikScorer(graphdef, sh, 0, 256, batch_tokens=64).score(params, rows, 2))
  np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)
