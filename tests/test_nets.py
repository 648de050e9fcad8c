import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nets
from nets.cnn import ConvNet, MLP, ResNet
from nets.layers import REMAT_POLICIES
from tests.test_precision import assert_rounded_like_bfloat16


def init_apply(model, x, train=False):
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  out = model.apply(variables, x, train=train, rngs={"dropout": jax.random.PRNGKey(1)},
                    mutable=["batch_stats"] if train else False)
  return variables, out


def count(params):
  return sum(p.size for p in jax.tree.leaves(params))


def test_logreg_is_one_dense_layer():
  variables, logits = init_apply(MLP(num_outputs=10, hidden=()), jnp.ones((3, 40, 1)))
  assert logits.shape == (3, 10)
  assert count(variables["params"]) == 40 * 10 + 10


def test_mlp_counts_and_dropout_only_in_train():
  model = MLP(hidden=(100, 100), dropout=0.5)
  x = jax.random.normal(jax.random.PRNGKey(2), (4, 40, 1))
  variables, eval_out = init_apply(model, x)
  assert count(variables["params"]) == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
  train_out, _ = init_apply(model, x, train=True)[1]
  assert not np.allclose(eval_out, train_out)
  np.testing.assert_array_equal(eval_out, model.apply(variables, x, train=False))


def test_paper_cnn_shape_and_params():
  """The MNIST-1D paper's CNN: 40 -> 19 -> 10 -> 5 positions (kernels 5, 3, 3, stride 2, padding
  1), so its linear layer takes 5 x 25 = 125 features, as the paper's code says."""
  model = ConvNet(features=(25, 25, 25), kernel_size=(5, 3, 3), strides=2, padding=1)
  variables, logits = init_apply(model, jnp.ones((2, 40, 1)))
  assert logits.shape == (2, 10)
  assert variables["params"]["MLP_0"]["Dense_0"]["kernel"].shape == (125, 10)
  assert count(variables["params"]) == (5 * 1 * 25 + 25) + 2 * (3 * 25 * 25 + 25) + (125 * 10 + 10)


@pytest.mark.parametrize("pool, positions", [("none", 40), ("max", 10), ("avg", 10)])
def test_convnet_pooling_shrinks_the_head(pool, positions):
  model = ConvNet(features=(8, 8), kernel_size=3, pool=pool)
  variables, _ = init_apply(model, jnp.ones((2, 40, 1)))
  assert variables["params"]["MLP_0"]["Dense_0"]["kernel"].shape == (positions * 8, 10)


def test_convnet_2d_with_batchnorm_updates_stats_in_train_only():
  model = ConvNet(features=(4, 8), kernel_size=(3, 3), pool="max", norm="batch")
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 28, 28, 1))
  variables, logits = init_apply(model, x)
  assert logits.shape == (2, 10)
  _, (_, updates) = init_apply(model, x, train=True)
  before = jax.tree.leaves(variables["batch_stats"])
  after = jax.tree.leaves(updates["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_convnet_rejects_bad_fields():
  with pytest.raises(ValueError, match="unknown pool 'median'"):
    init_apply(ConvNet(pool="median"), jnp.ones((2, 40, 1)))
  with pytest.raises(ValueError, match="kernel_size has 2 entries for 3 conv blocks"):
    init_apply(ConvNet(kernel_size=(3, 3)), jnp.ones((2, 40, 1)))
  with pytest.raises(ValueError, match=r"\(B, L, C\) or \(B, H, W, C\)"):
    init_apply(ConvNet(), jnp.ones((2, 40)))


@pytest.mark.parametrize("depth, blocks", [(18, 8), (34, 16)])
def test_resnet_depth(depth, blocks):
  model = ResNet(depth=depth, width=4)
  x = jnp.ones((2, 8, 8, 3))
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x))
  names = [k for k in variables["params"] if k.startswith("ResidualBlock")]
  assert len(names) == blocks


@pytest.mark.slow  # a ResNet-18 forward and backward on CPU: `make test-slow`
def test_resnet_eval_is_per_example_and_train_is_not():
  """Eval uses running statistics (an example's output ignores the rest of the batch); train
  normalises with the batch's own statistics."""
  model = ResNet(depth=18, width=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 3))
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)
  apply_eval = jax.jit(functools.partial(model.apply, train=False))
  apply_train = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))
  # Example 0 with its batch-mates doubled: eval ignores them, train does not.
  other = jnp.concatenate([x[:1], 2 * x[1:]])
  np.testing.assert_allclose(apply_eval(variables, other)[0], apply_eval(variables, x)[0], atol=1e-5)
  assert not np.allclose(apply_train(variables, other)[0][0], apply_train(variables, x)[0][0],
                         atol=1e-5)


def test_registry_lists_valid_names():
  with pytest.raises(ValueError, match="unknown model 'vgg'; valid: convnet, mlp, resnet, rnn, rnn_seq2seq, transformer, "
                     "transformer_lm, transformer_seq2seq"):
    nets.create_model("vgg")
  assert "features" in nets.model_fields(ConvNet) and "name" not in nets.model_fields(ConvNet)


# The primitive jax.checkpoint binds, taken from a jaxpr rather than by its printed name (jax 0.12
# prints it and its policies differently from 0.10).
CHECKPOINT_P = jax.make_jaxpr(jax.checkpoint(jnp.sin))(1.0).eqns[0].primitive


@pytest.mark.slow  # traces and compiles ResNet-18 four ways: `make test-slow`
def test_resnet_remat_and_bfloat16():
  """remat wraps each block in a checkpoint under the chosen policy (the numbers are flax's
  `nn.remat`, tested equal on the Transformer); bfloat16 keeps float32 params, stats and logits."""
  model = ResNet(num_outputs=10, depth=18, width=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 3))
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)

  def checkpoint_policies(model):
    """The policy of every checkpoint in the forward pass (the blocks are top-level eqns)."""
    jaxpr = jax.make_jaxpr(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables)
    return [e.params["policy"] for e in jaxpr.eqns if e.primitive is CHECKPOINT_P]

  assert checkpoint_policies(model) == []
  for name, policy in REMAT_POLICIES.items():  # one checkpoint per residual block
    assert checkpoint_policies(model.clone(remat=True, remat_policy=name)) == [policy] * 8
  logits = jax.jit(model.clone(dtype="bfloat16").apply)(variables, x)
  assert_rounded_like_bfloat16(logits, jax.jit(model.apply)(variables, x))
  with pytest.raises(ValueError, match="remat_policy"):
    model.clone(remat=True, remat_policy="some").init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize("model", [MLP(hidden=(16,)), ConvNet(features=(8, 8), norm="batch")])
def test_bfloat16_cnn_family_keeps_float32_params_and_logits(model):
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 40, 1))
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  logits = model.clone(dtype="bfloat16").apply(variables, x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  assert_rounded_like_bfloat16(logits, model.apply(variables, x))
