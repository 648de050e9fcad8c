import warnings
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets.recurrent import CELLS, RecurrentCell, RecurrentNet, RNNLayer, hidden, with_hidden
from tests.test_precision import assert_rounded_like_bfloat16

B, T, D, H = 2, 6, 2, 4
LENGTHS = jnp.array([5, 2])


def normal(seed, shape):
  # numpy, not jax.random: every new shape would cost a compilation.
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def close(a, b, atol=1e-5):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5), a, b)


def loop_layer(cell_name, params, x_BTD, carry=None, perturb_BTH=None, lengths_B=None,
               dtype=jnp.float32):
  """Reference for a forward RNNLayer: the cell applied step by step in a Python loop (the cell
  computes h @ W_h itself, so jax's autodiff of this loop is a reference for the layer's own
  backward pass)."""
  cell = CELLS[cell_name](params["cell"]["hidden"]["kernel"].shape[0], dtype=dtype)
  W_x, b = params["input"]["kernel"].astype(dtype), params["input"]["bias"].astype(dtype)
  xw_BTG = x_BTD.astype(dtype) @ W_x + b
  carry = cell.initialize_carry(x_BTD.shape[0]) if carry is None else carry
  outputs = []
  for t in range(x_BTD.shape[1]):
    new_carry, h_BH = cell.apply({"params": params["cell"]}, carry, xw_BTG[:, t])
    if perturb_BTH is not None:
      h_BH = h_BH + perturb_BTH[:, t]
      new_carry = with_hidden(new_carry, h_BH)
    if lengths_B is not None:
      valid_B1 = (t < lengths_B)[:, None]
      new_carry = jax.tree.map(lambda new, old: jnp.where(valid_B1, new, old), new_carry, carry)
      h_BH = jnp.where(valid_B1, h_BH, 0.0)
    carry = new_carry
    outputs.append(h_BH)
  return jnp.stack(outputs, axis=1), carry


class DecayCell(RecurrentCell):
  """A test cell whose carry has three parts, h last, (s, c, h), as no cell of ours has:

    f, g = split(W_x x + b + W_h h)      c' = sigmoid(f) * c + (1 - sigmoid(f)) * tanh(g)
    s' = s / 2 + c'                      h' = tanh(c' + s' / 10)
  """
  num_gates: ClassVar[int] = 2
  carry_names: ClassVar[tuple[str, ...]] = ("s", "c", "h")

  @nn.compact
  def __call__(self, carry, xw_BG, hw_BG=None):
    s_BH, c_BH, _ = carry
    f, g = jnp.split(xw_BG.astype(jnp.float32) + self.hidden_to_gates(carry, hw_BG), 2, axis=-1)
    c_BH = nn.sigmoid(f) * c_BH + (1 - nn.sigmoid(f)) * jnp.tanh(g)
    s_BH = s_BH / 2 + c_BH
    h_BH = jnp.tanh(c_BH + s_BH / 10)
    return (s_BH, c_BH, h_BH), h_BH

  @nn.nowrap
  def initialize_carry(self, batch_size, dtype=jnp.float32):
    return tuple(jnp.zeros((batch_size, self.features), dtype) for _ in self.carry_names)


# flax's cell, and the names of its input kernels, input-side biases and hidden kernels in our
# fused gate order. The LSTM keeps its biases on the hidden side; we move them to the input side.
LSTM_HIDDEN = ["hi", "hf", "hg", "ho"]
FLAX_LAYOUT = {
    "simple": (nn.SimpleCell, ["i"], ["i"], ["h"]),
    "lstm": (nn.LSTMCell, ["ii", "if", "ig", "io"], LSTM_HIDDEN, LSTM_HIDDEN),
    "gru": (nn.GRUCell, ["ir", "iz", "in"], ["ir", "iz", "in"], ["hr", "hz", "hn"]),
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_equals_flax_cell_with_the_same_weights(name):
  if name not in FLAX_LAYOUT:
    pytest.skip(f"flax has no {name!r} cell to compare with")
  flax_cls, ins, biases, hids = FLAX_LAYOUT[name]
  flax_cell = flax_cls(H)
  x_TBD = normal(0, (T, B, D))
  carry = (normal(1, (B, H)), normal(2, (B, H))) if name == "lstm" else normal(1, (B, H))
  params = flax_cell.init(jax.random.key(3), carry, x_TBD[0])["params"]
  leaves, treedef = jax.tree.flatten(params)
  # Distinct nonzero biases (flax's are zero), so that a gate-order mix-up shows.
  params = treedef.unflatten([p + 0.3 * normal(i, p.shape) for i, p in enumerate(leaves, 4)])
  W_x = jnp.concatenate([params[k]["kernel"] for k in ins], axis=-1)
  b = jnp.concatenate([params[k]["bias"] for k in biases], axis=-1)
  ours = {"hidden": {"kernel": jnp.concatenate([params[k]["kernel"] for k in hids], axis=-1)}}
  if name == "gru":
    ours["bias_hn"] = params["hn"]["bias"]
  cell = CELLS[name](H)
  ours_carry = carry
  for x_BD in x_TBD:
    carry, h = flax_cell.apply({"params": params}, carry, x_BD)
    ours_carry, ours_h = cell.apply({"params": ours}, ours_carry, x_BD @ W_x + b)
    close(ours_h, h)
    close(ours_carry, carry)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_scanned_layer_equals_python_loop(name):
  layer = RNNLayer(H, name, unroll=2)
  x = normal(0, (B, T, D))
  params = layer.init(jax.random.key(1), x)["params"]
  if CELLS[name].hidden_to_gates is RecurrentCell.hidden_to_gates:  # one fused matmul, all gates
    assert params["cell"]["hidden"]["kernel"].shape == (H, CELLS[name].num_gates * H)
  close(layer.apply({"params": params}, x), loop_layer(name, params, x))


@pytest.mark.parametrize("name,dtype", [(name, "float32") for name in sorted(CELLS)] +
                         [pytest.param("gru", "bfloat16", marks=pytest.mark.slow)])
def test_layer_gradients_equal_autodiff_of_the_loop(name, dtype):
  """The layer's written-out backward pass against jax's autodiff of the Python loop: gradients of
  every parameter, the inputs, the initial carry and the perturbation, with padding (a zero length
  too); relative L2 error of each. In bfloat16 (matmuls in bfloat16 on both sides) the layer sums
  the kernel's gradient over all steps in float32, the loop step by step from bfloat16 products:
  up to 4e-3 here, so 1e-2 (float32, 1e-6, is where a wrong term shows)."""
  lengths_B = jnp.array([5, 0])
  layer = RNNLayer(H, name, unroll=2, dtype=jnp.dtype(dtype))
  x = normal(0, (B, T, D))
  params = layer.init(jax.random.key(1), x)["params"]
  params = jax.tree.map(lambda p: p + 0.3 * normal(2, p.shape), params)
  zeros = CELLS[name](H).initialize_carry(B)
  carry, w_carry = (jax.tree.map(lambda a, i=i: normal(i, a.shape), zeros) for i in (6, 4))
  w_BTH = normal(3, (B, T, H))

  def loss(outputs):
    h_BTH, final = outputs
    return jnp.sum(h_BTH * w_BTH) + sum(jnp.sum(a * w) for a, w in zip(
        jax.tree.leaves(final), jax.tree.leaves(w_carry)))

  def reference(params, x, carry, perturb):
    return loss(loop_layer(name, params, x, carry, perturb, lengths_B, jnp.dtype(dtype)))

  def ours(params, x, carry, perturb):
    return loss(layer.apply({"params": params}, x, lengths_B=lengths_B, initial_carry=carry,
                            perturb_BTH=perturb))

  args = (params, x, carry, 0.1 * normal(5, (B, T, H)))
  grads = jax.jit(jax.grad(ours, argnums=(0, 1, 2, 3)))(*args)
  expected = jax.jit(jax.grad(reference, argnums=(0, 1, 2, 3)))(*args)
  errors = [float(np.linalg.norm(a - b) / np.linalg.norm(b)) for a, b in
            zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True)]
  assert max(errors) <= (1e-6 if dtype == "float32" else 1e-2), errors


def test_the_hidden_state_is_the_last_part_of_a_carry(monkeypatch):
  """The cell contract (docs/extending.md): h is a tuple carry's last part, of three parts too. A
  cell computing h @ W_h itself multiplies that part; the layer's perturbation and backward pass
  replace it and keep the others (against autodiff of the loop, with padding)."""
  cell = DecayCell(H)
  carry = tuple(normal(i, (B, H)) for i in (1, 2, 3))
  xw_BG = normal(4, (B, 2 * H))
  params = cell.init(jax.random.key(0), carry, xw_BG)["params"]
  hw_BG = carry[-1] @ params["hidden"]["kernel"]
  close(cell.apply({"params": params}, carry, xw_BG),
        cell.apply({"params": params}, carry, xw_BG, hw_BG))
  monkeypatch.setitem(CELLS, "decay", DecayCell)
  test_layer_gradients_equal_autodiff_of_the_loop("decay", "float32")


@pytest.mark.parametrize("name", sorted(CELLS))
def test_padded_batch_equals_each_sequence_alone(name):
  x = normal(0, (B, T, D))
  variables = RNNLayer(H, name).init(jax.random.key(1), x)
  for reverse in (False, True):
    layer = RNNLayer(H, name, reverse=reverse)
    outputs, carry = layer.apply(variables, x, lengths_B=LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
      alone, carry_alone = layer.apply(variables, x[b:b + 1, :n])
      close(outputs[b, :n], alone[0])
      np.testing.assert_array_equal(outputs[b, n:], 0.0)
      close(jax.tree.map(lambda a: a[b], carry), jax.tree.map(lambda a: a[0], carry_alone))


def layer_call(state, name):
  """The (outputs_BTH, final_carry) of a named RNNLayer, from `capture_intermediates=True`."""
  return state["intermediates"][name]["__call__"][0]


def linear(params, x):
  return x @ params["kernel"] + params["bias"]


def test_bidirectional_backward_direction_and_last_head():
  model = RecurrentNet(cell="gru", features=H, bidirectional=True)
  x = normal(0, (B, T, D))
  params = model.init(jax.random.key(1), x)["params"]
  logits, state = model.apply({"params": params}, x, lengths=LENGTHS, capture_intermediates=True)
  fwd_BTH, _ = layer_call(state, "forward_0")
  bwd_BTH, bwd_carry = layer_call(state, "backward_0")
  forward_layer = RNNLayer(H, "gru")
  for b, n in enumerate(LENGTHS.tolist()):
    flipped, carry = forward_layer.apply({"params": params["backward_0"]}, x[b:b + 1, :n][:, ::-1])
    close(bwd_BTH[b, :n], flipped[0, ::-1])
    close(bwd_carry[b], carry[0])
  # 'last' reads the forward state after the last valid step and the backward one after step 0.
  final = jnp.concatenate([fwd_BTH[jnp.arange(B), LENGTHS - 1], bwd_BTH[:, 0]], axis=-1)
  close(logits, linear(params["head"], final))


def test_mean_head_averages_valid_steps_only():
  model = RecurrentNet(features=H, head="mean")
  x = normal(0, (B, T, D))
  variables = model.init(jax.random.key(1), x)
  logits, state = model.apply(variables, x, lengths=LENGTHS, capture_intermediates=True)
  h_BTH, _ = layer_call(state, "forward_0")
  mean = jnp.stack([h_BTH[b, :n].mean(axis=0) for b, n in enumerate(LENGTHS.tolist())])
  close(logits, linear(variables["params"]["head"], mean))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradients_are_finite_on_long_sequences(name):
  model = RecurrentNet(cell=name, features=H)
  x = normal(0, (B, 500, D))
  params = model.init(jax.random.key(1), x)["params"]
  grads = jax.grad(lambda p: model.apply({"params": p}, x).sum())(params)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert np.abs(grads["forward_0"]["cell"]["hidden"]["kernel"]).sum() > 0


def test_forget_bias_sets_the_forget_gate_bias():
  params = RecurrentNet(features=H, forget_bias=2.5).init(jax.random.key(0), normal(0, (B, T, D)))
  expected = np.zeros(4 * H)
  expected[H:2 * H] = 2.5
  np.testing.assert_array_equal(params["params"]["forward_0"]["input"]["bias"], expected)


def test_initial_carry_is_learned_or_given():
  layer = RNNLayer(H, "lstm", learn_initial_carry=True)
  x = normal(0, (B, T, D))
  params = layer.init(jax.random.key(1), x)["params"]
  np.testing.assert_array_equal(params["initial_c"], np.zeros(H))
  np.testing.assert_array_equal(params["initial_h"], np.zeros(H))
  params = {**params, "initial_h": jnp.ones(H)}
  close(layer.apply({"params": params}, x),
        loop_layer("lstm", params, x, carry=(jnp.zeros((B, H)), jnp.ones((B, H)))))
  given = (normal(2, (B, H)), normal(3, (B, H)))
  close(layer.apply({"params": params}, x, initial_carry=given),
        loop_layer("lstm", params, x, carry=given))
  gru = jax.eval_shape(RNNLayer(H, "gru").init, jax.random.key(1), x)["params"]
  assert "initial_h" not in gru


def test_per_step_head_on_tokens():
  model = RecurrentNet(num_outputs=10, features=H, head="per_step", vocab_size=10, embed_dim=D)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 10, (B, T)))
  variables = model.init(jax.random.key(1), tokens)
  assert model.apply(variables, tokens).shape == (B, T, 10)
  assert variables["params"]["Embed_0"]["embedding"].shape == (10, D)


def test_bfloat16_runs_and_keeps_float32_carries():
  model = RecurrentNet(features=H, dtype="bfloat16")
  x = normal(0, (B, T, D))
  variables = model.init(jax.random.key(1), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  logits, state = model.apply(variables, x, lengths=LENGTHS, capture_intermediates=True)
  outputs, carry = layer_call(state, "forward_0")
  assert all(a.dtype == jnp.float32 for a in [logits, outputs, *carry])
  assert_rounded_like_bfloat16(logits, model.clone(dtype="float32").apply(variables, x,
                                                                        lengths=LENGTHS))


def test_dropout_acts_between_layers_only_in_train():
  two = RecurrentNet(features=H, num_layers=2, dropout=0.5)
  x = normal(0, (B, T, D))
  params = two.init(jax.random.key(1), x)["params"]
  train = two.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(train, two.apply({"params": params}, x))
  # One layer has no dropout site, so training needs no 'dropout' rng.
  one = two.clone(num_layers=1)
  one.apply({"params": {k: params[k] for k in ("forward_0", "head")}}, x, train=True)


def test_perturb_gradient_is_dL_dh_through_the_recurrence():
  model = RecurrentNet(features=H)
  x = normal(0, (B, T, D))
  params = model.init(jax.random.key(1), x)["params"]
  zeros = jnp.zeros((B, T, H))

  def reference_loss(perturb):
    _, carry = loop_layer("lstm", params["forward_0"], x, perturb_BTH=perturb)
    return linear(params["head"], hidden(carry)).sum()

  loss = lambda perturb: model.apply({"params": params}, x, perturb=perturb).sum()
  grad = jax.grad(loss)(zeros)
  # The 'last' head reads only the final step; earlier steps reach it only through the recurrence.
  assert (np.abs(grad).sum(axis=-1) > 0).all()
  close(grad, jax.grad(reference_loss)(zeros))


def test_perturb_on_a_reversed_padded_layer_skips_padding():
  layer = RNNLayer(H, "gru", reverse=True)
  x = normal(0, (B, T, D))
  variables = layer.init(jax.random.key(1), x)
  loss = lambda p: layer.apply(variables, x, lengths_B=LENGTHS, perturb_BTH=p)[1].sum()
  grad_BT = np.abs(jax.grad(loss)(jnp.zeros((B, T, H)))).sum(axis=-1)
  valid_BT = np.arange(T)[None] < np.asarray(LENGTHS)[:, None]
  assert (grad_BT[valid_BT] > 0).all() and (grad_BT[~valid_BT] == 0).all()


def test_rejects_bad_fields():
  x = jnp.ones((1, 2, 1))
  with pytest.raises(ValueError) as e:
    RecurrentNet(cell="rnn").init(jax.random.key(0), x)
  assert str(e.value).splitlines()[0] == f"unknown cell 'rnn'; valid: {', '.join(sorted(CELLS))}"
  with pytest.raises(ValueError, match="unknown head 'max'; valid: last, mean, per_step"):
    RecurrentNet(head="max").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="unknown dtype 'float16'"):
    RecurrentNet(dtype="float16").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match=r"\(B, T, D\) inputs"):
    RecurrentNet().init(jax.random.key(0), jnp.ones((1, 2)))


def test_a_new_cell_gets_every_check_by_name(monkeypatch):
  """What docs/extending.md promises: a cell added to CELLS, one flax lacks, goes through every
  check parametrised over CELLS here (they failed on a new cell: flax's layout, the message)."""
  monkeypatch.setitem(CELLS, "decay", DecayCell)
  with pytest.raises(pytest.skip.Exception, match="flax has no 'decay' cell"):
    test_cell_equals_flax_cell_with_the_same_weights("decay")
  test_scanned_layer_equals_python_loop("decay")
  test_layer_gradients_equal_autodiff_of_the_loop("decay", "float32")
  test_padded_batch_equals_each_sequence_alone("decay")
  test_gradients_are_finite_on_long_sequences("decay")
  test_rejects_bad_fields()


def test_the_run_summary_of_a_recurrent_model_takes_no_shape_of_a_module():
  """train prints `nn.tabulate(model, depth=1)`, which records the arguments of the module methods
  it sees; RNNLayer's helpers that take modules (the cell, the input Dense) made jax warn that the
  shape of a non-array "will be an error" in a future release."""
  model = RecurrentNet(num_outputs=5, vocab_size=5, embed_dim=4, cell="gru", features=8,
                       head="per_step")
  tokens_BT = jnp.zeros((2, 6), jnp.int32)
  with warnings.catch_warnings(record=True) as caught:  # not "error": flax's summary catches it
    warnings.simplefilter("always", DeprecationWarning)
    table = nn.tabulate(model, jax.random.key(0), depth=1)(tokens_BT, train=False)
  assert "RNNLayer" in table
  assert not [str(w.message) for w in caught if w.category is DeprecationWarning]
