"""Generation: left-padded batches, EOS stopping, top-p against numpy, CPU layer unstacking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xy_jax.infer.generate import Generator, left_pad
from xy_jax.infer.sampling import SamplingConfig, sample, top_p_filter
from xy_jax.models.factory import init_model
from xy_jax.models.llama import CausalLM
from xy_jax.models.presets import get_preset
from xy_jax.sharding import LogicalSharding

CFG = get_preset("tiny")
GREEDY = SamplingConfig(greedy=True, max_new_tokens=12)


@pytest.fixture(scope="module")
def model():
  return init_model(CausalLM, CFG, LogicalSharding(), seed=2)


@pytest.fixture(scope="module")
def gen(model):
  return Generator(model, eos_id=2, pad_id=3)


def test_left_padded_batch_equals_one_by_one(gen):
  rng = np.random.default_rng(1)
  prompts = [rng.integers(4, CFG.vocab_size, n).tolist() for n in (5, 17, 40)]
  batch = gen.generate(prompts, GREEDY)
  for p, b in zip(prompts, batch):
    assert gen.generate([p], GREEDY)[0].tokens == b.tokens


def test_stops_at_eos(gen, model):
  prompt = [5, 6, 7]
  free = gen.generate([prompt], GREEDY)[0].tokens
  # Make the third greedy token the EOS: generation must end right before it.
  gen_eos = Generator(model, eos_id=free[2], pad_id=3)
  out = gen_eos.generate([prompt], GREEDY)[0]
  assert out.finished and out.tokens == free[:2]


@pytest.mark.parametrize("sampling", [GREEDY, SamplingConfig(temperature=1.0, max_new_tokens=12)])
def test_stream_yields_what_generate_returns(gen, model, sampling):
  prompt = [5, 6, 7, 8]
  assert list(gen.stream(prompt, sampling, seed=3)) == gen.generate([prompt], sampling, seed=3)[0].tokens
  free = gen.generate([prompt], GREEDY)[0].tokens
  gen_eos = Generator(model, eos_id=free[4], pad_id=3)
  assert list(gen_eos.stream(prompt, GREEDY)) == free[:4]


def test_cpu_generator_unstacks_layers(gen):
  assert gen.layers is not None and len(gen.layers) == CFG.num_hidden_layers


@pytest.mark.parametrize("sampling", [GREEDY, SamplingConfig(temperature=1.0, max_new_tokens=12)])
def test_unstacked_layers_decode_like_the_scanned_stack(model, sampling):
  rng = np.random.default_rng(4)
  prompts = [rng.integers(4, CFG.vocab_size, n).tolist() for n in (3, 21, 33)]
  scanned = Generator(model, eos_id=-1, pad_id=3, unstack=False)
  unstacked = Generator(model, eos_id=-1, pad_id=3, unstack=True)
  assert scanned.layers is None
  want = scanned.generate(prompts, sampling, seed=5)
  got = unstacked.generate(prompts, sampling, seed=5)
  assert [g.tokens for g in got] == [w.tokens for w in want]


def test_unstack_layers_copies_each_layer_and_empties_the_stack(model):
  from flax import nnx
  from xy_jax.models.llama import unstack_layers
  state = nnx.state(model)
  hollow, layers = unstack_layers(state, CFG.num_hidden_layers)
  stacked = state["model"]["layers"]["mlp"]["up_proj"]["weight"][...]
  for i, layer in enumerate(layers):
    np.testing.assert_array_equal(layer["mlp"]["up_proj"]["weight"][...], stacked[i])
  assert all(a.size == 0 for a in jax.tree.leaves(hollow["model"]["layers"]))
  np.testing.assert_array_equal(hollow["lm_head"]["weight"][...], state["lm_head"]["weight"][...])


def test_left_pad_layout():
  tokens, valid = left_pad([[7, 8], [9]], pad_id=3, bucket=4)
  assert tokens.tolist() == [[3, 3, 7, 8], [3, 3, 3, 9]]
  assert valid.tolist() == [[False, False, True, True], [False, False, False, True]]


def _numpy_top_p(logits, p):
  out = np.full_like(logits, -np.inf)
  for r, row in enumerate(logits):
    order = np.argsort(-row, kind="stable")
    probs = np.exp(row[order] - row.max())
    probs /= probs.sum()
    keep = np.cumsum(probs) - probs < p
    out[r, order[keep]] = row[order[keep]]
  return out


@pytest.mark.parametrize("p", [0.1, 0.5, 0.95, 1.0])
def test_top_p_filter_matches_numpy(p):
  logits = np.random.default_rng(0).normal(size=(4, 50)).astype(np.float32) * 3
  np.testing.assert_array_equal(np.asarray(top_p_filter(jnp.asarray(logits), p)),
                                _numpy_top_p(logits, p) if p < 1 else logits)


def test_sampling_respects_top_p_and_temperature():
  logits = jnp.log(jnp.asarray([[0.6, 0.3, 0.05, 0.05]]))
  keys = jax.random.split(jax.random.key(0), 2000)
  draws = jax.vmap(lambda k: sample(logits, k, SamplingConfig(temperature=1.0, top_p=0.8)))(keys)
  counts = np.bincount(np.asarray(draws).ravel(), minlength=4)
  assert counts[2] == counts[3] == 0  # outside the 0.8 nucleus
  assert 0.6 < counts[0] / 2000 < 0.73  # renormalised 0.6 / 0.9 = 0.667


def test_bad_sampling_settings_fail_early():
  with pytest.raises(ValueError, match="temperature"):
    SamplingConfig(temperature=0.0)
  with pytest.raises(ValueError, match="top_p"):
    SamplingConfig(top_p=1.5)
