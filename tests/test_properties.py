"""Property tests (hypothesis): for random batch sizes, lengths, masks and dtypes the CNN, recurrent
and attention modules keep their shapes, ignore what their masks hide, and stay finite."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nets.attention import MultiHeadAttention
from nets.cnn import MLP, ConvNet
from nets.recurrent import CELLS, RNNLayer

# Tiny shapes and few examples: every new shape is traced again.
FEW = settings(max_examples=3, deadline=None, derandomize=True)
DTYPES = st.sampled_from([jnp.float32, jnp.bfloat16])


def assert_finite(*arrays):
  for a in arrays:
    assert np.isfinite(np.asarray(a, np.float32)).all()


def batch_and_lengths(draw, max_batch=3, max_len=5):
  b = draw(st.integers(1, max_batch))
  t = draw(st.integers(1, max_len))
  lengths = np.array(draw(st.lists(st.integers(0, t), min_size=b, max_size=b)), np.int32)
  return b, t, lengths


def random_x(seed, shape, dtype):
  return jax.random.normal(jax.random.PRNGKey(seed), shape).astype(dtype)


@pytest.mark.slow  # many compiles: `make test-slow`
@FEW
@given(b=st.integers(1, 3), length=st.sampled_from([4, 9]), dtype=DTYPES, seed=st.integers(0, 99),
       model=st.sampled_from(["mlp", "conv_batchnorm", "conv_layernorm_pool"]))
def test_cnn_shapes_finite_and_examples_independent_in_eval(b, length, dtype, seed, model):
  module = {"mlp": MLP(num_outputs=3, hidden=(8,)),
            "conv_batchnorm": ConvNet(num_outputs=3, features=(4, 4), kernel_size=3, norm="batch"),
            "conv_layernorm_pool": ConvNet(num_outputs=3, features=(4,), kernel_size=3,
                                           norm="layer", pool="max", hidden=(5,))}[model]
  x = random_x(seed, (b, length, 2), dtype)
  variables = module.init(jax.random.PRNGKey(0), x, train=False)
  out = module.apply(variables, x, train=False)
  assert out.shape == (b, 3)
  assert_finite(out)
  # In eval mode (BatchNorm on running statistics) an example's output is its own business.
  np.testing.assert_allclose(module.apply(variables, x[:1], train=False), out[:1], rtol=1e-5,
                             atol=1e-5)
  train_out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
  assert train_out.shape == (b, 3)
  assert_finite(train_out, *jax.tree.leaves(updates))


@pytest.mark.slow  # many compiles: `make test-slow`
@FEW
@given(data=st.data(), cell=st.sampled_from(sorted(CELLS)), reverse=st.booleans(),
       dtype=DTYPES, seed=st.integers(0, 99))
def test_rnn_padding_is_zero_and_ignored(data, cell, reverse, dtype, seed):
  b, t, lengths = batch_and_lengths(data.draw)
  layer = RNNLayer(features=3, cell=cell, reverse=reverse, dtype=dtype)
  x = random_x(seed, (b, t, 2), jnp.float32)
  variables = layer.init(jax.random.PRNGKey(0), x, lengths_B=lengths)
  apply = jax.jit(layer.apply)
  h, carry = apply(variables, x, lengths_B=lengths)
  assert h.shape == (b, t, 3)
  assert_finite(h, *jax.tree.leaves(carry))
  padded = np.arange(t)[None, :] >= lengths[:, None]
  assert (np.asarray(h, np.float32)[padded] == 0).all()
  # Whatever sits in the padding changes neither the outputs nor the final carry.
  noise = random_x(seed + 1, x.shape, jnp.float32) * 100
  h2, carry2 = apply(variables, jnp.where(padded[..., None], noise, x), lengths_B=lengths)
  np.testing.assert_array_equal(np.asarray(h, np.float32), np.asarray(h2, np.float32))
  jax.tree.map(np.testing.assert_array_equal, carry, carry2)


@FEW
@given(data=st.data(), causal=st.booleans(), heads=st.sampled_from([1, 2]), dtype=DTYPES,
       seed=st.integers(0, 99))
def test_attention_masks_hide_what_they_should(data, causal, heads, dtype, seed):
  b, t, lengths = batch_and_lengths(data.draw)
  attention = MultiHeadAttention(num_heads=heads, features=4, dtype=dtype)
  x = random_x(seed, (b, t, 4), jnp.float32)
  variables = attention.init(jax.random.PRNGKey(0), x)
  apply = jax.jit(functools.partial(attention.apply, causal=causal, return_weights=True))
  out, weights = apply(variables, x, lengths=lengths)
  assert out.shape == (b, t, 4) and weights.shape == (b, heads, t, t)
  assert_finite(out, weights)
  weights = np.asarray(weights, np.float32)
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-2)  # bfloat16 rounding
  hidden = np.arange(t)[None, :] >= lengths[:, None]  # (B, S): padded keys
  if causal:
    hidden = hidden[:, None, :] | (np.arange(t)[None, None, :] > np.arange(t)[None, :, None])
  else:
    hidden = np.broadcast_to(hidden[:, None, :], (b, t, t))
  seen = ~hidden.all(-1)  # (B, T) queries with at least one visible key
  assert (weights.transpose(0, 2, 1, 3)[seen] * hidden[seen][:, None, :] == 0).all()
  # Changing the padded steps leaves every valid query's output as it was (causal: and the future
  # leaves the past alone).
  cut = int(data.draw(st.integers(0, t - 1)))
  changed = np.arange(t)[None, :] >= (np.minimum(lengths, cut + 1) if causal else lengths)[:, None]
  noise = random_x(seed + 1, x.shape, jnp.float32) * 100
  out2, _ = apply(variables, jnp.where(changed[..., None], noise, x), lengths=lengths)
  keep = ~changed & (np.arange(t)[None, :] < lengths[:, None])
  np.testing.assert_array_equal(np.asarray(out, np.float32)[keep], np.asarray(out2, np.float32)[keep])
