"""The cuDNN LSTM backend on a CPU: its refusals, and the whole layer with cuDNN's op replaced by
jax's plain-jnp reference of cuDNN's math (`lstm_ref`) on our packed weights, against the scan.
The real op against the scan is in tests/test_gpu.py."""
import types

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from nets import layers, recurrent_cudnn
from nets.recurrent import RecurrentNet, RNNLayer
from nets.transformer import TransformerClassifier

B, T, D, H = 3, 7, 5, 4


def normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.fixture
def cudnn_on_cpu(monkeypatch):
  """backend='cudnn' runnable here, with cuDNN's op replaced by its jnp reference."""
  monkeypatch.setattr(recurrent_cudnn, "lstm_op", recurrent_cudnn.lstm_reference)
  monkeypatch.setattr(layers, "cuda_problem", lambda: None)


@pytest.mark.parametrize("reverse", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_cudnn_math_on_packed_weights_equals_the_scan(cudnn_on_cpu, reverse):
  """Outputs, final carry and gradients (params, inputs, initial carry) agree, with padding, a
  zero length, a given initial carry and either direction."""
  x_BTD = normal(0, (B, T, D))
  lengths_B = jnp.array([7, 3, 0])
  carry = (normal(1, (B, H)), normal(2, (B, H)))
  scan = RNNLayer(H, "lstm", reverse=reverse)
  params = scan.init(jax.random.key(0), x_BTD)["params"]
  params = jax.tree.map(lambda p: p + 0.1 * normal(3, p.shape), params)  # nonzero biases too

  def loss(backend, params, x_BTD, carry):
    h_BTH, (c_BH, h_BH) = scan.clone(backend=backend).apply(
        {"params": params}, x_BTD, lengths_B=lengths_B, initial_carry=carry)
    weights_BTH = normal(4, h_BTH.shape)
    return jnp.sum(h_BTH * weights_BTH) + jnp.sum(c_BH ** 2) + jnp.sum(h_BH), (h_BTH, c_BH, h_BH)

  grad = jax.grad(loss, argnums=(1, 2, 3), has_aux=True)
  with jax.default_matmul_precision("highest"):
    (g_scan, out_scan), (g_cudnn, out_cudnn) = grad("scan", params, x_BTD, carry), \
        grad("cudnn", params, x_BTD, carry)
  for a, b in zip(jax.tree.leaves((out_scan, g_scan)), jax.tree.leaves((out_cudnn, g_cudnn))):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
  assert np.all(out_cudnn[0][1, 3:] == 0) and np.all(out_cudnn[0][2] == 0)  # padded steps
  np.testing.assert_array_equal(out_cudnn[1][2], carry[0][2])  # length 0: the initial carry


@pytest.mark.slow  # a minute on 2 cores: `make test-slow`
def test_both_backends_share_parameters(cudnn_on_cpu):
  x_BTD = normal(0, (B, T, D))
  net = RecurrentNet(num_outputs=3, features=H, num_layers=2, bidirectional=True,
                     learn_initial_carry=True)
  variables = net.init(jax.random.key(0), x_BTD)
  cudnn_variables = net.clone(backend="cudnn").init(jax.random.key(0), x_BTD)
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, cudnn_variables)
  jax.tree.map(np.testing.assert_array_equal, variables, cudnn_variables)
  with jax.default_matmul_precision("highest"):
    np.testing.assert_allclose(net.clone(backend="cudnn").apply(variables, x_BTD),
                               net.apply(variables, x_BTD), atol=1e-5)


def test_packing_follows_cudnn_layout():
  W_x, b, W_h = normal(0, (D, 4 * H)), normal(1, (4 * H,)), normal(2, (H, 4 * H))
  w = recurrent_cudnn.pack_weights(W_x, b, W_h)
  assert w.shape == (jax.experimental.rnn.get_num_params_in_lstm(D, H, 1, False),)
  W_ih, W_hh, b_ih, b_hh = jax.experimental.rnn.unpack_lstm_weights(w, D, H, 1, False)
  np.testing.assert_array_equal(W_ih[0], W_x.T)
  np.testing.assert_array_equal(W_hh[0], W_h.T)
  np.testing.assert_array_equal(b_ih[0], b)
  np.testing.assert_array_equal(b_hh[0], 0)


@pytest.mark.parametrize("fields, call, match", [
    (dict(cell="gru"), {}, "runs the LSTM only"),
    (dict(cell="simple"), {}, "runs the LSTM only"),
    (dict(dtype=jnp.bfloat16), {}, "float32 only"),
    (dict(), dict(perturb_BTH=jnp.zeros((B, T, H))), "perturb_BTH"),
    (dict(backend="cuda"), {}, r"unknown backend 'cuda'.*; valid: scan, cudnn"),
])
def test_refusals_name_the_reason(cudnn_on_cpu, fields, call, match):
  layer = RNNLayer(H, **{"backend": "cudnn", **fields})
  with pytest.raises(ValueError, match=match):
    layer.init(jax.random.key(0), normal(0, (B, T, D)), **call)


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the refusal off a GPU")
def test_refuses_without_a_gpu():
  with pytest.raises(ValueError, match="backend='cudnn' needs a CUDA GPU; jax's default backend "
                                       "is 'cpu'"):
    RecurrentNet(features=H, backend="cudnn").init(jax.random.key(0), normal(0, (B, T, D)))


def test_rocm_is_refused_by_both_cudnn_kernels(monkeypatch):
  """ROCm's jax reports the backend 'gpu' too; its MIOpen is no cuDNN."""
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(jax.extend.backend, "get_backend",
                      lambda: types.SimpleNamespace(platform_version="rocm 6.3.1"))
  transformer = TransformerClassifier(vocab_size=11, num_layers=1, num_heads=2, features=8,
                                      max_len=T, attention_kernel="cudnn")
  for model, x in [(RecurrentNet(features=H, backend="cudnn"), normal(0, (B, T, D))),
                   (transformer, jnp.zeros((B, T), jnp.int32))]:
    with pytest.raises(ValueError, match=r"needs a CUDA GPU \(cuDNN\); this GPU runs ROCm"):
      model.init(jax.random.key(0), x)
