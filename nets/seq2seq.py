"""Encoder-decoders for sequence transduction: an RNN encoder-decoder without attention (Sutskever
et al. 2014), with additive (Bahdanau et al. 2015) or multiplicative (Luong et al. 2015) attention
over the encoder's states, and the encoder-decoder Transformer (Vaswani et al. 2017).

Both take `x_B2L` int tokens: row 0 the source, row 1 the decoder's input (a start token, then the
target shifted right), each padded with token 0 at its end; they return next-token logits
`(B, L, num_outputs)`. Token 0 is padding: the source's length is its count of non-zero tokens,
and attention never looks at padded source positions. Greedy and beam-search decoding:
nets/decoding.py, through the methods `encode` and `decode` that both models have.
"""
import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from nets.attention import MultiHeadAttention
from nets.layers import DTYPES, check_choice
from nets.recurrent import CELLS, RNNLayer, hidden
from nets.transformer import Block, Transformer, embed_init

ATTENTIONS = ("none", "additive", "multiplicative")


def split_source_target(x_B2L):
  if x_B2L.ndim != 3 or x_B2L.shape[1] != 2:
    raise ValueError(f"seq2seq models take (B, 2, L) tokens (source, decoder input), got shape "
                     f"{x_B2L.shape}")
  return x_B2L[:, 0], x_B2L[:, 1]


def source_lengths(source_BS) -> jax.Array:
  """(B,): the number of non-padding tokens (padding, token 0, is at the end)."""
  return jnp.sum(source_BS != 0, axis=1)


def attend(scores_BS, valid_BS, values_BSE, dtype=jnp.float32):
  """softmax over the valid source positions (float32), and the weighted sum of the values (a
  matmul in `dtype`, returned as float32)."""
  # Finite, as in nets.attention: a source with no valid position gives uniform weights, not NaNs.
  weights_BS = jax.nn.softmax(jnp.where(valid_BS, scores_BS.astype(jnp.float32),
                                        jnp.finfo(jnp.float32).min), axis=-1)
  context_BE = jnp.einsum("bs,bse->be", weights_BS.astype(dtype), values_BSE.astype(dtype))
  return context_BE.astype(jnp.float32), weights_BS


class RNNDecoderStep(nn.Module):
  """One decoder step `(carry, y_BE, memory) -> (carry, (logits_BV, weights_BS))`, where y is the
  embedded previous token and s the decoder's hidden state, h_j the encoder's states:

    none:            s_t = cell(s_{t-1}, y);                 logits = W_o s_t
    additive:        e_tj = v . tanh(W s_{t-1} + U h_j),     c_t = sum_j softmax_j(e_tj) h_j,
                     s_t = cell(s_{t-1}, [y; c_t]);          logits = W_o [s_t; c_t]
    multiplicative:  s_t = cell(s_{t-1}, y),                 e_tj = s_t . W h_j (Luong's 'general'),
                     c_t = sum_j softmax_j(e_tj) h_j;        logits = W_o tanh(W_c [c_t; s_t])

  `U h_j` is computed once per source by the encoder (`memory["keys"]`). Without attention the
  weights are zeros. Every matmul runs in `dtype` (nets/layers.py's precision policy); the
  softmax, the carry and the logits stay float32.
  """
  num_outputs: int
  cell: str
  features: int
  attention: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry, y_BE, memory):
    cell_cls = CELLS[self.cell]
    cell = cell_cls(self.features, dtype=self.dtype, name="cell")
    states_BSE, valid_BS = memory["states"], memory["valid"]
    weights_BS = jnp.zeros(valid_BS.shape, jnp.float32)
    x_BE = y_BE
    dense = lambda features, name, **kw: nn.Dense(features, dtype=self.dtype, name=name, **kw)
    if self.attention == "additive":
      query_BA = dense(memory["keys"].shape[-1], "query", use_bias=False)(hidden(carry))
      scores_BS = dense(1, "score", use_bias=False)(
          jnp.tanh(query_BA[:, None] + memory["keys"]))[..., 0]
      context_BE, weights_BS = attend(scores_BS, valid_BS, states_BSE, self.dtype)
      x_BE = jnp.concatenate([y_BE, context_BE], -1)
    project = nn.Dense(cell.num_gates * self.features, dtype=self.dtype,
                       bias_init=cell.input_bias_init, name="input")
    carry, s_BH = cell(carry, project(x_BE))
    out_BF = s_BH
    if self.attention == "additive":
      out_BF = jnp.concatenate([s_BH, context_BE], -1)
    elif self.attention == "multiplicative":
      query_BE = dense(states_BSE.shape[-1], "query", use_bias=False)(s_BH)
      scores_BS = jnp.einsum("be,bse->bs", query_BE, states_BSE.astype(self.dtype))
      context_BE, weights_BS = attend(scores_BS, valid_BS, states_BSE, self.dtype)
      out_BF = jnp.tanh(dense(self.features, "combine")(jnp.concatenate([context_BE, s_BH], -1)))
    return carry, (dense(self.num_outputs, "head")(out_BF).astype(jnp.float32), weights_BS)


class RNNSeq2Seq(nn.Module):
  """RNN encoder-decoder: the encoder (bidirectional: forward and backward layers, states
  concatenated) reads the source; the decoder starts from the encoder's final carry (bidirectional:
  each carry part tanh(W [forward; backward])) and, with attention, looks back at every encoder
  state at each step (`RNNDecoderStep`). One layer each; cells from nets/recurrent.py."""
  vocab_size: int = 16
  zero_allowed: ClassVar[tuple[str, ...]] = ("vocab_size",)  # may be 0 (train/config.py)
  num_outputs: int = 16
  cell: str = "lstm"
  features: int = 64
  embed_dim: int = 32
  bidirectional: bool = False
  attention: str = "additive"
  attention_dim: int = 64  # the hidden size of additive attention
  dtype: str = "float32"

  def setup(self):
    check_choice("cell", self.cell, sorted(CELLS))
    check_choice("attention", self.attention, ATTENTIONS)
    check_choice("dtype", self.dtype, sorted(DTYPES))
    dtype = DTYPES[self.dtype]
    self.source_embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.target_embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.encoders = [RNNLayer(self.features, self.cell, reverse=reverse, dtype=dtype)
                     for reverse in ([False, True] if self.bidirectional else [False])]
    if self.bidirectional:
      self.bridges = [nn.Dense(self.features, dtype=dtype) for _ in CELLS[self.cell].carry_names]
    if self.attention == "additive":
      self.keys = nn.Dense(self.attention_dim, use_bias=False, dtype=dtype)
    scan = nn.scan(RNNDecoderStep, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=(1, nn.broadcast), out_axes=1)
    self.decoder = scan(self.num_outputs, self.cell, self.features, self.attention, dtype)

  def encode(self, source_BS):
    """-> memory: the encoder's states, their validity, the additive keys U h_j, and the
    decoder's initial carry."""
    lengths_B = source_lengths(source_BS)
    x_BSE = self.source_embed(source_BS)
    outputs, carries = zip(*[encoder(x_BSE, lengths_B=lengths_B) for encoder in self.encoders])
    states_BSE = jnp.concatenate(outputs, -1)
    carry = carries[0]
    if self.bidirectional:
      parts = zip(*[c if isinstance(c, tuple) else (c,) for c in carries])
      parts = [jnp.tanh(bridge(jnp.concatenate(p, -1))).astype(jnp.float32)
               for bridge, p in zip(self.bridges, parts)]
      carry = tuple(parts) if isinstance(carries[0], tuple) else parts[0]
    memory = {"states": states_BSE, "valid": jnp.arange(source_BS.shape[1]) < lengths_B[:, None],
              "carry": carry}
    if self.attention == "additive":
      memory["keys"] = self.keys(states_BSE)
    return memory

  def decode(self, memory, tokens_BL, carry=None):
    """The next L tokens from `carry` (None: the encoder's) -> (logits_BLV, weights_BLS, carry)."""
    carry = memory["carry"] if carry is None else carry
    carry, (logits_BLV, weights_BLS) = self.decoder(carry, self.target_embed(tokens_BL), memory)
    return logits_BLV, weights_BLS, carry

  def __call__(self, x_B2L, *, train: bool = False):
    del train  # no dropout
    source_BS, target_BT = split_source_target(x_B2L)
    return self.decode(self.encode(source_BS), target_BT)[0]

  def alignments(self, x_B2L):
    """The attention weights (B, T, S) of a teacher-forced pass."""
    source_BS, target_BT = split_source_target(x_B2L)
    return self.decode(self.encode(source_BS), target_BT)[1]


class DecoderBlock(Block):
  """x + Dropout(SelfAttention(LN(x))) (causal; KV cache when decoding), then
  x + Dropout(CrossAttention(LN(x), memory)) over the valid source positions, then the MLP."""

  @nn.compact
  def __call__(self, x_BTD, memory_BSD, lengths_B):
    D = x_BTD.shape[-1]
    attention = lambda name, rope: MultiHeadAttention(
        self.num_heads, D, dropout=self.attention_dropout, kernel=self.attention_kernel, rope=rope,
        dtype=self.dtype, name=name)
    h = self.norm("attention_norm", x_BTD)
    h = attention("attention", self.rope)(h, causal=True, decode=self.decode, train=self.train)
    x_BTD = x_BTD + self.drop(h)
    h = self.norm("cross_attention_norm", x_BTD)
    h = attention("cross_attention", False)(h, memory_BSD, lengths=lengths_B, train=self.train)
    return self.feed_forward(x_BTD + self.drop(h))


class TransformerEncoder(Transformer):
  """Source tokens (B, S) and lengths (B,) -> states (B, S, features): embedding, positions, the
  non-causal blocks over the valid positions, the final LayerNorm."""

  @nn.compact
  def __call__(self, source_BS, lengths_B, *, train: bool = False):
    embed = nn.Embed(self.vocab_size, self.features, embedding_init=embed_init, name="embed")
    x_BSD = self.add_positions(embed(source_BS), jnp.arange(source_BS.shape[1]), train)
    return self.encode(x_BSD, lengths_B, causal=False, train=train)


class TransformerDecoder(Transformer):
  """Decoder tokens (B, T), the encoder's states and the source lengths -> logits (B, T, V).
  Its blocks are neither scanned nor rematerialised (`scan_layers` and `remat` are the encoder's)."""

  @nn.compact
  def __call__(self, tokens_BT, memory_BSD, lengths_B, *, train: bool = False,
               decode: bool = False):
    embed = nn.Embed(self.vocab_size, self.features, embedding_init=embed_init, name="embed")
    x_BTD = self.add_positions(embed(tokens_BT), self.positions(tokens_BT.shape[1], decode), train)
    for i in range(self.num_layers):
      x_BTD = DecoderBlock(
          num_heads=self.num_heads, mlp_dim=self.mlp_dim or 4 * self.features,
          dropout=self.dropout, attention_dropout=self.attention_dropout,
          attention_kernel=self.attention_kernel, rope=self.pos_encoding == "rotary",
          dtype=DTYPES[self.dtype], train=train, decode=decode, name=f"block_{i}",
      )(x_BTD, memory_BSD, lengths_B)
    h_BTD = nn.LayerNorm(dtype=jnp.float32, name="final_norm")(x_BTD)
    return nn.Dense(self.num_outputs, dtype=DTYPES[self.dtype], name="head")(h_BTD).astype(
        jnp.float32)


class TransformerSeq2Seq(Transformer):
  """Encoder-decoder Transformer (Vaswani et al. 2017, pre-LayerNorm): `num_layers` encoder blocks
  and `num_layers` decoder blocks (causal self-attention, cross-attention to the encoder's states,
  MLP). `decode=True` runs the decoder's self-attention on its KV cache (see
  `nets.attention.MultiHeadAttention`); cross-attention reads the encoder's states each step."""
  vocab_size: int = 16
  num_outputs: int = 16

  def setup(self):
    self.check_fields()
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)  # not ClassVars
              if f.init and f.name not in ("parent", "name")}
    self.encoder = TransformerEncoder(**fields)
    self.decoder = TransformerDecoder(**fields)

  def encode(self, source_BS, *, train: bool = False):
    lengths_B = source_lengths(source_BS)
    return {"states": self.encoder(source_BS, lengths_B, train=train), "lengths": lengths_B}

  def decode(self, memory, tokens_BL, *, train: bool = False, decode: bool = False):
    return self.decoder(tokens_BL, memory["states"], memory["lengths"], train=train, decode=decode)

  def __call__(self, x_B2L, *, train: bool = False, decode: bool = False):
    source_BS, target_BT = split_source_target(x_B2L)
    return self.decode(self.encode(source_BS, train=train), target_BT, train=train, decode=decode)


def cross_attention_weights(model: TransformerSeq2Seq, params, x_B2L) -> jax.Array:
  """Every decoder layer's cross-attention weights in a teacher-forced pass: (num_layers, B,
  num_heads, T, S). Needs the 'xla' kernel."""
  _, state = model.apply({"params": params}, x_B2L, mutable=["intermediates"])
  sown = state["intermediates"]["decoder"]
  return jnp.stack([sown[f"block_{i}"]["cross_attention"]["attention_weights"][0]
                    for i in range(model.num_layers)])
