"""cuDNN's fused LSTM (`jax.experimental.rnn.lstm`) behind `RNNLayer(backend='cudnn')`.

The parameters are the scan layer's own: the input projection W_x (D, 4H) with bias b, and the
cell's hidden kernel W_h (H, 4H), gates in the order (i, f, g, o), which is cuDNN's order too.
Each call packs them into cuDNN's flat weight vector (W_ih, W_hh, b_ih, b_hh) with
W_ih = W_x^T, W_hh = W_h^T, b_ih = b and b_hh = 0 (cuDNN adds two biases; ours is one), so a
checkpoint trained with either backend runs with the other, and the gradients reach the same
parameters through the packing.

What `jax.experimental.rnn` can do decides what this backend accepts (the module is identical in
jax 0.10.2, 0.11.2 and 0.12.0.1): an LSTM only, float32 only (its lowering rejects bfloat16;
cuDNN's matmuls use TF32 unless the matmul precision is 'highest'), on a CUDA GPU only (there is
no CPU lowering, and ROCm's MIOpen orders the gates differently). Where it cannot run, `problem`
names the reason and the layer raises it as a one-line ValueError.
"""
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import rnn

from nets import layers

# The op that runs the layer; tests on CPU replace it by `lstm_reference`.
lstm_op = rnn.lstm


def problem(cell: str, dtype: Any, param_dtype: Any, perturb: bool) -> str | None:
  """Why `RNNLayer(backend='cudnn')` cannot run this layer, or None."""
  if cell != "lstm":
    return f"runs the LSTM only (jax.experimental.rnn); cell={cell!r} needs backend='scan'"
  if jnp.dtype(dtype) != jnp.float32 or jnp.dtype(param_dtype) != jnp.float32:
    return ("computes in float32 only (jax.experimental.rnn has no bfloat16; its matmuls use "
            "TF32); use dtype='float32' or backend='scan'")
  if perturb:
    return "cannot add perturb_BTH inside cuDNN's recurrence; use backend='scan'"
  return layers.cuda_problem()


def pack_weights(W_x_DG: jax.Array, b_G: jax.Array, W_h_HG: jax.Array) -> jax.Array:
  """Our fused kernels -> cuDNN's flat weights for one unidirectional layer."""
  return jnp.concatenate([W_x_DG.T.ravel(), W_h_HG.T.ravel(), b_G, jnp.zeros_like(b_G)])


def lstm_reference(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, num_layers,
                   dropout, bidirectional, precision=None):
  """`rnn.lstm`'s math in plain jnp on cuDNN's packed weights (jax's own reference, `lstm_ref`),
  for checking the packing and the layer on a CPU."""
  del precision
  W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers,
                                                   bidirectional)
  return rnn.lstm_ref(x, h_0, c_0, W_ih, W_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size,
                      num_layers, dropout, bidirectional)


def cudnn_lstm(x_BTD, carry, W_x_DG, b_G, W_h_HG, lengths_B=None):
  """One forward LSTM layer through cuDNN with `RNNLayer`'s semantics: returns
  `(h_BTH, (c_BH, h_BH))`, outputs zero at padded steps, the final carry the one after the last
  valid step, and the initial carry kept where a length is 0."""
  B, T, D = x_BTD.shape
  H = W_h_HG.shape[0]
  lengths = jnp.full((B,), T, jnp.int32) if lengths_B is None else lengths_B.astype(jnp.int32)
  c0_BH, h0_BH = carry
  # cuDNN wants every length >= 1; a length-0 row is reset to its initial carry below.
  h_BTH, h_1BH, c_1BH = lstm_op(x_BTD.astype(jnp.float32), h0_BH[None], c0_BH[None],
                                pack_weights(W_x_DG, b_G, W_h_HG), jnp.maximum(lengths, 1),
                                input_size=D, hidden_size=H, num_layers=1, dropout=0.0,
                                bidirectional=False)
  valid_BT1 = (jnp.arange(T)[None, :] < lengths[:, None])[..., None]
  empty_B1 = (lengths == 0)[:, None]
  carry = (jnp.where(empty_B1, c0_BH, c_1BH[0]), jnp.where(empty_B1, h0_BH, h_1BH[0]))
  return jnp.where(valid_BT1, h_BTH, 0.0), carry
