"""Recurrent nets: simple RNN, LSTM and GRU cells, a scanned layer, and a stacked classifier.

A cell owns only its hidden-to-hidden weights, fused into one `(H, G*H)` kernel for its G gates.
The layer projects the inputs of every step at once (`xw_BTG = x_BTD @ W_x + b`, one matmul) and
scans the cell over time, so each step costs a single `(B, H) @ (H, G*H)` matmul. Matmuls run in
`dtype`; gates and carries stay float32. The backward pass is written out (`recurrence`) so that,
as in cuDNN, the recurrent kernel's gradient is one `(H, T*B) @ (T*B, G*H)` matmul after the
backward loop rather than an `(H, G*H)` sum carried through its T steps.

`backend='cudnn'` runs the same LSTM layer, with the same parameters, as one cuDNN call
(`nets/recurrent_cudnn.py`); it refuses, with the reason, where cuDNN cannot run it.
"""
import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nets import recurrent_cudnn
from nets.layers import DTYPES, check_choice

Carry = Any  # h_BH, or a tuple whose last part is h_BH: (c_BH, h_BH) for the LSTM


def hidden(carry: Carry) -> jax.Array:
  """The hidden state h_BH of a carry: the last part of a tuple (the LSTM's (c, h)), else the
  carry itself."""
  return carry[-1] if isinstance(carry, tuple) else carry


def with_hidden(carry: Carry, h_BH: jax.Array) -> Carry:
  """`carry` with h_BH as its hidden state (the perturbation, and dL/dh in the backward pass)."""
  return (*carry[:-1], h_BH) if isinstance(carry, tuple) else h_BH


def stacked(init: nn.initializers.Initializer, n: int) -> nn.initializers.Initializer:
  """Initialises a fused `(in, n*out)` kernel as n independent `(in, out)` blocks, one per gate."""
  def init_fn(key, shape, dtype=jnp.float32):
    keys = jax.random.split(key, n)
    return jnp.concatenate([init(k, (shape[0], shape[1] // n), dtype) for k in keys], axis=-1)
  return init_fn


class RecurrentCell(nn.Module):
  """One step `(carry, xw_BG[, hw_BG]) -> (carry, h_BH)`, where `xw_BG = x_t @ W_x + b` holds the
  input part of all G*H gate pre-activations and `hw_BG = h_{t-1} @ W_h` the hidden part (computed
  by the cell unless given). Subclasses set `num_gates` and the step.

  The carry is h_BH, or a tuple of (B, H) parts whose LAST is h_BH (`hidden`, `with_hidden`: the
  layer multiplies it by W_h, perturbs it and returns it), named in that order by `carry_names`
  (a learned initial carry's params `initial_<name>`) and made by `initialize_carry`."""
  features: int
  spectral_radius: float = 1.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  num_gates: ClassVar[int]
  carry_names: ClassVar[tuple[str, ...]] = ("h",)

  def hidden_to_gates(self, carry, hw_BG=None):
    """`h @ W_h` for every gate at once, returned as float32; `hw_BG` when the caller computed it
    (`recurrence` does, to own its gradient). Each gate's `(H, H)` block starts orthogonal times
    `spectral_radius`: all its eigenvalues (and singular values) have that modulus, so above 1 the
    linearised recurrence amplifies gradients (Pascanu et al. 2013)."""
    if hw_BG is not None:
      return hw_BG.astype(jnp.float32)
    dense = nn.Dense(self.num_gates * self.features, use_bias=False, dtype=self.dtype,
                     param_dtype=self.param_dtype,
                     kernel_init=stacked(nn.initializers.orthogonal(self.spectral_radius),
                                         self.num_gates),
                     name="hidden")
    return dense(hidden(carry)).astype(jnp.float32)

  @nn.nowrap
  def initialize_carry(self, batch_size: int, dtype: Any = jnp.float32) -> Carry:
    return jnp.zeros((batch_size, self.features), dtype)

  @nn.nowrap
  def input_bias_init(self, key, shape, dtype=jnp.float32):
    """Init of b in the layer's input projection, the cell's only bias (bar the GRU's b_hn)."""
    return jnp.zeros(shape, dtype)


def sow_gates(cell: nn.Module, **gates: jax.Array) -> dict[str, jax.Array]:
  """Records a step's gate activations (each (B, H)) as `intermediates/gates` when the caller
  applies the cell with that collection mutable (`experiments/analysis/gates.py`); otherwise,
  as in training, nothing is kept."""
  cell.sow("intermediates", "gates", gates)
  return gates


class SimpleRNNCell(RecurrentCell):
  """Elman RNN: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)."""
  num_gates: ClassVar[int] = 1

  @nn.compact
  def __call__(self, carry, xw_BG, hw_BG=None):
    h_BH = jnp.tanh(xw_BG.astype(jnp.float32) + self.hidden_to_gates(carry, hw_BG))
    return h_BH, h_BH


class LSTMCell(RecurrentCell):
  """LSTM with gates in flax's order (i, f, g, o):

    i = sigmoid(W_ii x + W_hi h + b_i)      f = sigmoid(W_if x + W_hf h + b_f)
    g = tanh(W_ig x + W_hg h + b_g)         o = sigmoid(W_io x + W_ho h + b_o)
    c' = f * c + i * g                      h' = o * tanh(c')

  Carry (c, h). `forget_bias` initialises b_f so that the cell starts out remembering
  (Gers et al. 2000; Jozefowicz et al. 2015).
  """
  forget_bias: float = 1.0

  num_gates: ClassVar[int] = 4
  carry_names: ClassVar[tuple[str, ...]] = ("c", "h")

  @nn.compact
  def __call__(self, carry, xw_BG, hw_BG=None):
    z_BG = xw_BG.astype(jnp.float32) + self.hidden_to_gates(carry, hw_BG)
    i, f, g, o = jnp.split(z_BG, 4, axis=-1)
    gate = sow_gates(self, input=nn.sigmoid(i), forget=nn.sigmoid(f), candidate=jnp.tanh(g),
                     output=nn.sigmoid(o))
    c_BH = gate["forget"] * carry[0] + gate["input"] * gate["candidate"]
    h_BH = gate["output"] * jnp.tanh(c_BH)
    return (c_BH, h_BH), h_BH

  @nn.nowrap
  def initialize_carry(self, batch_size: int, dtype: Any = jnp.float32) -> Carry:
    zeros = jnp.zeros((batch_size, self.features), dtype)
    return zeros, zeros

  @nn.nowrap
  def input_bias_init(self, key, shape, dtype=jnp.float32):
    H = shape[-1] // 4
    return jnp.zeros(shape, dtype).at[H:2 * H].set(self.forget_bias)


class GRUCell(RecurrentCell):
  """GRU as in flax's `nn.GRUCell` and PyTorch, gates in the order (r, z, n):

    r = sigmoid(W_ir x + b_r + W_hr h)      z = sigmoid(W_iz x + b_z + W_hz h)
    n = tanh(W_in x + b_n + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

  b_hn is a parameter of the cell since r scales it; the other biases are in the input projection.
  """
  num_gates: ClassVar[int] = 3

  @nn.compact
  def __call__(self, carry, xw_BG, hw_BG=None):
    b_hn = self.param("bias_hn", nn.initializers.zeros_init(), (self.features,), self.param_dtype)
    xr, xz, xn = jnp.split(xw_BG.astype(jnp.float32), 3, axis=-1)
    hr, hz, hn = jnp.split(self.hidden_to_gates(carry, hw_BG), 3, axis=-1)
    r, z = nn.sigmoid(xr + hr), nn.sigmoid(xz + hz)
    gate = sow_gates(self, reset=r, update=z,
                     candidate=jnp.tanh(xn + r * (hn + b_hn.astype(jnp.float32))))
    h_BH = (1.0 - gate["update"]) * gate["candidate"] + gate["update"] * carry
    return h_BH, h_BH


CELLS: dict[str, type[RecurrentCell]] = {"simple": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}
BACKENDS = ("scan", "cudnn")


def reverse_valid(x_BT, lengths_B=None):
  """Reverses each sequence within its first `lengths_B[b]` steps, keeping the padding at the end
  (as flax's `flip_sequences`). It is its own inverse."""
  T = x_BT.shape[1]
  if lengths_B is None:
    return jnp.flip(x_BT, axis=1)
  idx_BT = (jnp.arange(T - 1, -1, -1)[None, :] + lengths_B[:, None]) % T
  return jnp.take_along_axis(x_BT, idx_BT.reshape(idx_BT.shape + (1,) * (x_BT.ndim - 2)), axis=1)


class RNNLayer(nn.Module):
  """Runs a cell over `(B, T, D)` inputs (`recurrence`), returning `(outputs_BTH, final_carry)`.

  `lengths_B` marks steps `t >= lengths_B[b]` as padding: there the carry stops updating (so the
  final carry is the one after the last valid step) and the output is zero. With `reverse=True`
  each sequence runs from its own last valid step back to step 0; outputs keep the input's time
  order and the final carry is the one after step 0.

  The initial carry is `initial_carry` when given (the cell's carry: h_BH, or a tuple ending in
  h_BH, (c_BH, h_BH) for the LSTM), else a learned parameter per carry part (`initial_h`, and
  `initial_c` for the LSTM; created whenever `learn_initial_carry=True`), else zeros.

  `perturb_BTH` (original time order) is added to the hidden output of every step inside the
  recurrence: `h_t + perturb_t` is both emitted and carried into step t+1 (only h is perturbed,
  not the carry's other parts: the LSTM's c). So the gradient of a loss w.r.t. `perturb_BTH` at zero is dL/dh_t, including
  every path through later steps. Perturbations at padded steps have no effect.

  `backend`: 'scan' (any cell; `unroll` steps per loop iteration) or 'cudnn' (the LSTM in
  float32 on a CUDA GPU, `jax.experimental.rnn`; same parameters and semantics).
  """
  features: int
  cell: str = "lstm"
  reverse: bool = False
  unroll: int = 1
  backend: str = "scan"
  forget_bias: float = 1.0
  spectral_radius: float = 1.0
  learn_initial_carry: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BTD, *, lengths_B=None, initial_carry=None, perturb_BTH=None):
    check_choice("cell", self.cell, sorted(CELLS))
    check_choice("backend", self.backend, BACKENDS)
    if not self.spectral_radius > 0:
      raise ValueError(f"spectral_radius must be > 0 (the recurrent weights' initial scale; 1 is "
                       f"orthogonal), got {self.spectral_radius}")
    if self.backend == "cudnn":
      problem = recurrent_cudnn.problem(self.cell, self.dtype, self.param_dtype,
                                        perturb=perturb_BTH is not None)
      if problem:
        raise ValueError(f"backend='cudnn' {problem}")
    cell_cls = CELLS[self.cell]
    extra = {"forget_bias": self.forget_bias} if cell_cls is LSTMCell else {}
    cell = cell_cls(self.features, self.spectral_radius, dtype=self.dtype,
                    param_dtype=self.param_dtype, name="cell", **extra)
    B = x_BTD.shape[0]

    carry = self.default_carry(cell, B)
    if initial_carry is not None:
      carry = jax.tree.map(lambda a: a.astype(jnp.float32), initial_carry)

    project = nn.Dense(cell.num_gates * self.features, dtype=self.dtype,
                       param_dtype=self.param_dtype, bias_init=cell.input_bias_init, name="input")
    if self.reverse:
      # Flip before the recurrence (rather than running it backwards) so that padding stays at
      # the end.
      x_BTD = reverse_valid(x_BTD, lengths_B)
      if perturb_BTH is not None:
        perturb_BTH = reverse_valid(perturb_BTH, lengths_B)
    if self.backend == "cudnn":
      h_BTH, carry = self.cudnn(project, cell, x_BTD, carry, lengths_B)
    else:
      h_BTH, carry = self.scan(project, cell, x_BTD, carry, lengths_B, perturb_BTH)
    if self.reverse:
      h_BTH = reverse_valid(h_BTH, lengths_B)
    return h_BTH, carry

  # Helpers of __call__ that take modules as arguments: unwrapped, so that flax's summary
  # (nn.tabulate) does not record their calls and take the shape of a module.
  @nn.nowrap
  def scan(self, project, cell, x_BTD, carry, lengths_B, perturb_BTH):
    xs = {"xw": project(x_BTD)}
    if perturb_BTH is not None:
      xs["perturb"] = perturb_BTH
    valid_TB = None if lengths_B is None else (
        jnp.arange(x_BTD.shape[1])[:, None] < lengths_B[None, :])
    W_HG, rest = self.cell_params(cell, carry)
    update = functools.partial(apply_cell, cell.clone(parent=None))
    to_time_major = lambda a: jnp.swapaxes(a, 0, 1)
    h_TBH, carry = recurrence(update, self.dtype, self.unroll, W_HG, rest, carry,
                              jax.tree.map(to_time_major, xs), valid_TB)
    return to_time_major(h_TBH), carry

  @nn.nowrap
  def cudnn(self, project, cell, x_BTD, carry, lengths_B):
    # cuDNN does the projection and the recurrence itself, with the scan's parameters.
    project(x_BTD[:, :0])
    W_x, b = project.variables["params"]["kernel"], project.variables["params"]["bias"]
    W_HG, _ = self.cell_params(cell, carry)
    return recurrent_cudnn.cudnn_lstm(x_BTD, carry, W_x, b, W_HG, lengths_B)

  @staticmethod
  def cell_params(cell: RecurrentCell, carry: Carry):
    """The cell's hidden kernel W_HG (its Dense 'hidden') and its other parameters (the GRU's
    b_hn), created (at init) by applying the cell to an empty batch."""
    cell(jax.tree.map(lambda a: a[:0], carry), jnp.zeros((0, cell.num_gates * cell.features)))
    rest = dict(cell.variables["params"])
    return rest.pop("hidden")["kernel"], rest

  @nn.nowrap
  def default_carry(self, cell: RecurrentCell, batch_size: int) -> Carry:
    """Zeros, or the learned `initial_*` params broadcast over the batch."""
    zeros = cell.initialize_carry(batch_size)
    if not self.learn_initial_carry:
      return zeros
    parts = [self.param(f"initial_{name}", nn.initializers.zeros_init(), (self.features,),
                        self.param_dtype) for name in cell.carry_names]
    parts = [jnp.broadcast_to(p.astype(jnp.float32), (batch_size, self.features)) for p in parts]
    return jax.tree.unflatten(jax.tree.structure(zeros), parts)


def apply_cell(cell: RecurrentCell, params, carry: Carry, xs: dict[str, jax.Array], hw_BG,
               valid_B=None):
  """One step as a pure function of `params` (all the cell's but W_h) and `hw_BG = h @ W_h`: the
  cell, then the perturbation, then the padding mask."""
  new_carry, h_BH = cell.apply({"params": params}, carry, xs["xw"], hw_BG)
  if "perturb" in xs:
    h_BH = h_BH + xs["perturb"]
    new_carry = with_hidden(new_carry, h_BH)
  if valid_B is not None:
    valid_B1 = valid_B[:, None]
    new_carry = jax.tree.map(lambda new, old: jnp.where(valid_B1, new, old), new_carry, carry)
    h_BH = jnp.where(valid_B1, h_BH, 0.0)
  return new_carry, h_BH


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def recurrence(update, dtype, unroll, W_HG, params, carry, xs_T, valid_TB):
  """`update` (`apply_cell`) over time-major `xs_T` from `carry`, with `hw_BG = h_BH @ W_HG` in
  `dtype`: returns (h_TBH, final carry). Its backward pass is a reverse scan that returns each
  step's cotangent of `hw_BG` (and carries dh_{t-1} = dhw_t @ W_HG^T); the kernel's gradient
  sum_t h_{t-1}^T dhw_t is then one matmul, where jax's transpose of a scan would add an (H, G*H)
  outer product into a loop carry at every step. Being a `jax.custom_vjp`, it has no forward-mode
  derivative (`jax.jvp`, `jax.linearize`, `jax.jacfwd` refuse it); reverse mode, also twice, works."""
  (h_TBH, final), _ = run_forward(update, dtype, unroll, W_HG, params, carry, xs_T, valid_TB,
                                  save=False)
  return h_TBH, final


def run_forward(update, dtype, unroll, W_HG, params, carry, xs_T, valid_TB, save):
  """The forward scan; `save`: also return each step's incoming carry and `hw_BG`, from which the
  backward pass recomputes the gates."""
  Wd_HG = W_HG.astype(dtype)  # in the matmuls' dtype

  def step(carry, inputs):
    xs, valid_B = inputs
    hw_BG = jnp.dot(hidden(carry).astype(dtype), Wd_HG)
    new_carry, h_BH = update(params, carry, xs, hw_BG, valid_B)
    return new_carry, (h_BH, carry, hw_BG) if save else (h_BH, None, None)

  final, (h_TBH, carries_T, hw_TBG) = jax.lax.scan(step, carry, (xs_T, valid_TB), unroll=unroll)
  return (h_TBH, final), (carries_T, hw_TBG)


def recurrence_fwd(update, dtype, unroll, W_HG, params, carry, xs_T, valid_TB):
  outputs, (carries_T, hw_TBG) = run_forward(update, dtype, unroll, W_HG, params, carry, xs_T,
                                             valid_TB, save=True)
  return outputs, (W_HG, params, carries_T, hw_TBG, xs_T, valid_TB)


def recurrence_bwd(update, dtype, unroll, saved, cotangents):
  W_HG, params, carries_T, hw_TBG, xs_T, valid_TB = saved
  dh_TBH, d_final = cotangents
  Wd_GH = W_HG.astype(dtype).T

  def step(acc, inputs):
    d_carry, d_params = acc
    carry, xs, valid_B, hw_BG, dh_BH = inputs
    _, vjp = jax.vjp(lambda p, c, x, hw: update(p, c, x, hw, valid_B), params, carry, xs, hw_BG)
    dp, d_carry, dxs, dhw_BG = vjp((d_carry, dh_BH))
    dh_prev_BH = jnp.dot(dhw_BG.astype(dtype), Wd_GH).astype(jnp.float32)
    d_carry = with_hidden(d_carry, hidden(d_carry) + dh_prev_BH)
    return (d_carry, jax.tree.map(jnp.add, d_params, dp)), (dxs, dhw_BG)

  (d_carry, d_params), (dxs_T, dhw_TBG) = jax.lax.scan(
      step, (d_final, jax.tree.map(jnp.zeros_like, params)),
      (carries_T, xs_T, valid_TB, hw_TBG, dh_TBH), reverse=True, unroll=unroll)
  dW_HG = jnp.einsum("tbh,tbg->hg", hidden(carries_T).astype(dtype), dhw_TBG.astype(dtype),
                     preferred_element_type=jnp.float32).astype(W_HG.dtype)
  d_valid = None if valid_TB is None else np.zeros(valid_TB.shape, jax.dtypes.float0)
  return dW_HG, d_params, d_carry, dxs_T, d_valid


recurrence.defvjp(recurrence_fwd, recurrence_bwd)


HEADS = ("last", "mean", "per_step")


class RecurrentNet(nn.Module):
  """Stacked (optionally bidirectional) RNN/LSTM/GRU with a linear head.

  Inputs are float `(B, T, D)` (MNIST-1D: `(B, 40, 1)`), or int tokens `(B, T)` embedded with
  `nn.Embed(vocab_size, embed_dim)` when `vocab_size > 0`. `lengths` (B,) marks the valid steps of a
  padded batch. Layer i has params `forward_i` (and `backward_i` when bidirectional, whose outputs
  are concatenated to the forward ones). Dropout acts between layers only.

  Heads: 'last' classifies the final hidden state of the last layer (bidirectional: forward final
  h concatenated with backward final h, i.e. the backward state after step 0) -> (B, num_outputs);
  'mean' averages the last layer's outputs over valid steps -> (B, num_outputs); 'per_step'
  applies the head at every step -> (B, T, num_outputs) (padded steps are not zeroed; a
  bidirectional net sees the future, so it does not suit language modelling).

  `perturb` (B, T, H), or (B, T, 2H) when bidirectional (forward half first), is added to the
  LAST layer's hidden states inside its recurrence (see `RNNLayer`): `jax.grad` w.r.t. a zero
  `perturb` gives dL/dh_t for every step t of the last layer.

  `backend` and `unroll` go to every layer (`RNNLayer`): 'cudnn' runs each LSTM layer through
  cuDNN on a GPU, with the same parameters as 'scan'. `spectral_radius` scales every layer's
  initial (orthogonal) recurrent weights: above 1, gradients explode (experiments/
  exploding_gradients.py).
  """
  num_outputs: int = 10
  cell: str = "lstm"
  features: int = 128
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  head: str = "last"
  vocab_size: int = 0
  zero_allowed: ClassVar[tuple[str, ...]] = ("vocab_size",)  # may be 0 (train/config.py)
  embed_dim: int = 64
  forget_bias: float = 1.0
  spectral_radius: float = 1.0
  learn_initial_carry: bool = False
  unroll: int = 1
  backend: str = "scan"
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, *, train: bool = False, lengths=None, perturb=None):
    check_choice("head", self.head, sorted(HEADS))
    check_choice("dtype", self.dtype, sorted(DTYPES))
    if self.vocab_size > 0:
      x = nn.Embed(self.vocab_size, self.embed_dim)(x)
    if x.ndim != 3:
      raise ValueError(f"RecurrentNet takes (B, T, D) inputs, or (B, T) tokens with vocab_size > 0; "
                       f"got shape {x.shape}")
    layer = lambda reverse, name: RNNLayer(
        self.features, self.cell, reverse=reverse, unroll=self.unroll, backend=self.backend,
        forget_bias=self.forget_bias, spectral_radius=self.spectral_radius,
        learn_initial_carry=self.learn_initial_carry,
        dtype=DTYPES[self.dtype], name=name)
    perturbs = [None, None]
    if perturb is not None:
      perturbs = jnp.split(perturb, 2, axis=-1) if self.bidirectional else [perturb, None]

    for i in range(self.num_layers):
      if i > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      last = i == self.num_layers - 1
      directions = [False, True] if self.bidirectional else [False]
      outputs, finals = [], []
      for reverse, p in zip(directions, perturbs):
        name = f"{'backward' if reverse else 'forward'}_{i}"
        h_BTH, carry = layer(reverse, name)(x, lengths_B=lengths, perturb_BTH=p if last else None)
        outputs.append(h_BTH)
        finals.append(hidden(carry))
      x = jnp.concatenate(outputs, axis=-1)

    if self.head == "last":
      features = jnp.concatenate(finals, axis=-1)
    elif self.head == "mean":
      # Padded outputs are zero, so a sum over all steps is a sum over the valid ones.
      count_B1 = x.shape[1] if lengths is None else jnp.maximum(lengths, 1)[:, None]
      features = x.sum(axis=1) / count_B1
    else:
      features = x
    # The head is tiny; float32 keeps the logits exact for the loss.
    return nn.Dense(self.num_outputs, name="head")(features)
