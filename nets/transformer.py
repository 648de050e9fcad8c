"""Pre-LayerNorm transformers: an encoder classifier (tokens, or 1-D/2-D patches as in ViT) and a
GPT-style language model (its KV-cache generation: nets/decoding.py).

The residual stream stays float32; with `dtype='bfloat16'` the blocks' matmuls run in bfloat16
while the params, LayerNorms, softmax and logits stay float32.
"""
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from nets.attention import KERNELS, MultiHeadAttention
from nets.layers import DTYPES, check_choice, cuda_problem, remat

POS_ENCODINGS = ("learned", "sinusoidal", "rotary")
POOLS = ("cls", "mean")
embed_init = nn.initializers.normal(0.02)  # GPT-2's; keeps tied-embedding logits small at init


class Block(nn.Module):
  """x + Dropout(Attention(LN(x))), then x + Dropout(MLP(LN(x))) with a GELU MLP.

  Returns `(x, None)`, the signature `nn.scan` wants.
  """
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  attention_dropout: float = 0.0
  attention_kernel: str = "xla"
  rope: bool = False
  causal: bool = False
  dtype: Any = jnp.float32
  # Fields rather than call arguments, so that nn.remat and nn.scan see them as static.
  train: bool = False
  decode: bool = False

  @nn.compact
  def __call__(self, x_BTD, lengths_B=None):
    D = x_BTD.shape[-1]
    h = self.norm("attention_norm", x_BTD)
    h = MultiHeadAttention(self.num_heads, D, dropout=self.attention_dropout,
                           kernel=self.attention_kernel, rope=self.rope, dtype=self.dtype,
                           name="attention")(h, causal=self.causal, lengths=lengths_B,
                                             decode=self.decode, train=self.train)
    return self.feed_forward(x_BTD + self.drop(h)), None

  def norm(self, name, x_BTD):
    """float32 LayerNorm, cast to the compute dtype once (the q, k and v projections share the
    cast). In a lower precision it is recomputed in the backward pass from x rather than its
    float32 intermediates stored per layer (GPT-2 small: 3 x (B, T, D) float32 each); in float32,
    where that saves less, it is not, which keeps float32 results bit for bit (a recomputation
    rounds differently in the last bit)."""
    layer_norm = nn.LayerNorm if jnp.dtype(self.dtype) == jnp.float32 else nn.remat(nn.LayerNorm)
    return layer_norm(dtype=jnp.float32, name=name)(x_BTD).astype(self.dtype)

  def drop(self, h):
    return nn.Dropout(self.dropout, deterministic=not self.train)(h)

  def feed_forward(self, x_BTD):
    """x + Dropout(MLP(LN(x)))."""
    h = self.norm("mlp_norm", x_BTD)
    # Recomputed in the backward pass from its input (elementwise, cheap) rather than stored:
    # the tanh GELU's derivative would keep five more (B, T, mlp_dim) intermediates per layer.
    h = jax.checkpoint(nn.gelu)(nn.Dense(self.mlp_dim, dtype=self.dtype, name="mlp_in")(h))
    h = nn.Dense(x_BTD.shape[-1], dtype=self.dtype, name="mlp_out")(h)
    return x_BTD + self.drop(h)


def sinusoidal(positions_T, features: int) -> jax.Array:
  """Vaswani et al. (2017): sines in the first half of the features, cosines in the second."""
  inv_freq_F = 10_000.0 ** (-jnp.arange(features // 2, dtype=jnp.float32) * 2 / features)
  angles_TF = positions_T[:, None].astype(jnp.float32) * inv_freq_F
  return jnp.concatenate([jnp.sin(angles_TF), jnp.cos(angles_TF)], axis=-1)


class Transformer(nn.Module):
  """Fields and layers shared by `TransformerClassifier` and `TransformerLM`.

  pos_encoding: 'learned' (a `(max_len, features)` table, so at most max_len positions),
  'sinusoidal', or 'rotary' (applied to q and k inside attention).
  `remat` recomputes each block's activations in the backward pass, keeping what `remat_policy`
  says (`nets.layers.REMAT_POLICIES`: full | dots | dots_no_batch); `scan_layers` runs one
  `nn.scan` over the blocks (params stacked on a leading layer axis, under 'blocks'), so that deep
  models compile fast. attention_kernel: 'xla' | 'dot_product' | 'cudnn' (see `nets.attention`);
  `attention_dropout > 0` needs 'xla'.
  """
  num_outputs: int = 10
  vocab_size: int = 0
  num_layers: int = 4
  num_heads: int = 4
  features: int = 128
  mlp_dim: int = 0  # 0: 4 * features
  zero_allowed: ClassVar[tuple[str, ...]] = ("vocab_size", "mlp_dim")  # may be 0 (train/config.py)
  dropout: float = 0.0
  attention_dropout: float = 0.0
  pos_encoding: str = "learned"
  max_len: int = 512
  remat: bool = False
  remat_policy: str = "full"
  scan_layers: bool = False
  dtype: str = "float32"
  attention_kernel: str = "xla"

  def check_fields(self):
    for name, value, valid in [("pos_encoding", self.pos_encoding, POS_ENCODINGS),
                               ("dtype", self.dtype, DTYPES),
                               ("attention_kernel", self.attention_kernel, KERNELS)]:
      check_choice(name, value, sorted(valid))
    if self.features % self.num_heads:
      raise ValueError(f"features={self.features} is not a multiple of num_heads={self.num_heads}")
    if self.pos_encoding == "sinusoidal" and self.features % 2:
      raise ValueError(f"pos_encoding='sinusoidal' needs an even features (sines and cosines in "
                       f"halves), got {self.features}")
    if self.attention_dropout > 0 and self.attention_kernel != "xla":
      raise ValueError(f"attention_dropout={self.attention_dropout} needs attention_kernel='xla', "
                       f"not {self.attention_kernel!r}")
    if self.attention_kernel == "cudnn" and (problem := cuda_problem()):
      raise ValueError(f"attention_kernel='cudnn' {problem} (use 'xla' or 'dot_product')")

  def add_positions(self, x_BTD, positions_T, train: bool):
    """Adds the learned or sinusoidal encoding of `positions_T`, then dropout."""
    T = x_BTD.shape[1]
    if self.pos_encoding == "learned":
      if T > self.max_len:
        raise ValueError(f"{T} positions, but the learned encoding has max_len={self.max_len}")
      table = self.param("pos_embedding", embed_init, (self.max_len, self.features))
      x_BTD = x_BTD + table[positions_T]
    elif self.pos_encoding == "sinusoidal":
      x_BTD = x_BTD + sinusoidal(positions_T, self.features)
    return nn.Dropout(self.dropout, deterministic=not train)(x_BTD)

  def positions(self, T: int, decode: bool) -> jax.Array:
    """The positions of T new tokens: 0..T-1, or after those already in the KV cache (whose
    'position' entry counts them) when decoding."""
    positions_T = jnp.arange(T)
    if decode:
      cached = self.has_variable("cache", "position")
      position = self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
      if cached:
        positions_T = position.value + positions_T
        position.value = position.value + T
    return positions_T

  def encode(self, x_BTD, lengths_B=None, *, causal: bool, train: bool, decode: bool = False):
    """The blocks, then the final LayerNorm."""
    # Inside a scan there is no common subexpression to guard against.
    block = remat(Block, self.remat, self.remat_policy, prevent_cse=not self.scan_layers)
    kwargs = dict(num_heads=self.num_heads, mlp_dim=self.mlp_dim or 4 * self.features,
                  dropout=self.dropout, attention_dropout=self.attention_dropout,
                  attention_kernel=self.attention_kernel, rope=self.pos_encoding == "rotary",
                  causal=causal, dtype=DTYPES[self.dtype], train=train, decode=decode)
    if self.scan_layers:
      stack = nn.scan(block, variable_axes={"params": 0, "cache": 0, "intermediates": 0},
                      split_rngs={"params": True, "dropout": True}, in_axes=nn.broadcast,
                      length=self.num_layers)
      x_BTD, _ = stack(**kwargs, name="blocks")(x_BTD, lengths_B)
    else:
      for i in range(self.num_layers):
        x_BTD, _ = block(**kwargs, name=f"block_{i}")(x_BTD, lengths_B)
    return nn.LayerNorm(dtype=jnp.float32, name="final_norm")(x_BTD)


def patches(x, p: int):
  """(B, L, C) -> (B, L/p, p*C), or (B, H, W, C) -> (B, HW/p^2, p*p*C) in row-major patch order."""
  if any(n % p for n in x.shape[1:-1]):
    raise ValueError(f"patch_size={p} does not divide the input's spatial shape {x.shape[1:-1]}")
  if x.ndim == 3:
    B, L, C = x.shape
    return x.reshape(B, L // p, p * C)
  B, H, W, C = x.shape
  x = x.reshape(B, H // p, p, W // p, p, C).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(B, (H // p) * (W // p), p * p * C)


class TransformerClassifier(Transformer):
  """Encoder classifier -> logits (B, num_outputs).

  Inputs: int tokens (B, T) when `vocab_size > 0`; else floats, cut into non-overlapping patches
  and embedded linearly: signals (B, L, C) into L/p patches of p steps, images (B, H, W, C) into
  HW/p^2 patches of p x p pixels (ViT). pool: 'cls' classifies a learned [CLS] token prepended
  to the sequence, 'mean' the average over the valid tokens. `lengths` (B,) marks padding:
  tokens (or signal steps) t >= lengths[b] are ignored (a patch counts if any of its steps does).
  """
  patch_size: int = 4
  pool: str = "cls"

  @nn.compact
  def __call__(self, x, *, train: bool = False, lengths=None):
    self.check_fields()
    check_choice("pool", self.pool, sorted(POOLS))
    if self.vocab_size > 0:
      if x.ndim != 2:
        raise ValueError(f"token inputs are (B, T), got shape {x.shape}")
      x_BTD = nn.Embed(self.vocab_size, self.features, embedding_init=embed_init, name="embed")(x)
    else:
      if x.ndim not in (3, 4):
        raise ValueError(f"float inputs are (B, L, C) or (B, H, W, C), got shape {x.shape}")
      if lengths is not None and x.ndim == 4:
        raise ValueError("lengths apply to tokens and 1-D signals, not images")
      x_BTD = nn.Dense(self.features, dtype=DTYPES[self.dtype], name="patch_embed")(
          patches(x, self.patch_size)).astype(jnp.float32)
      if lengths is not None:
        lengths = -(-lengths // self.patch_size)
    B, T, _ = x_BTD.shape
    if self.pool == "cls":
      cls = self.param("cls", nn.initializers.zeros_init(), (1, 1, self.features))
      x_BTD = jnp.concatenate([jnp.broadcast_to(cls, (B, 1, self.features)), x_BTD], axis=1)
      if lengths is not None:
        lengths = lengths + 1
    x_BTD = self.add_positions(x_BTD, jnp.arange(x_BTD.shape[1]), train)
    h_BTD = self.encode(x_BTD, lengths, causal=False, train=train)
    if self.pool == "cls":
      features = h_BTD[:, 0]
    elif lengths is None:
      features = h_BTD.mean(axis=1)
    else:
      valid_BT1 = (jnp.arange(T) < lengths[:, None])[..., None]
      features = (h_BTD * valid_BT1).sum(axis=1) / jnp.maximum(lengths, 1)[:, None]
    return nn.Dense(self.num_outputs, name="head")(features)


class TransformerLM(Transformer):
  """GPT-style causal language model: tokens (B, T) -> next-token logits (B, T, num_outputs).

  `tie_embeddings` computes the logits as h @ E^T with the input embedding E (then num_outputs
  must equal vocab_size) instead of a separate head. `decode=True` runs on the KV cache (see
  `nets.attention.MultiHeadAttention` and `generate`); the cache also keeps the next position.
  """
  vocab_size: int = 256
  num_outputs: int = 256
  tie_embeddings: bool = False

  @nn.compact
  def __call__(self, tokens_BT, *, train: bool = False, decode: bool = False):
    self.check_fields()
    if self.vocab_size <= 0:
      raise ValueError(f"TransformerLM takes tokens: vocab_size must be > 0, got {self.vocab_size}")
    if self.tie_embeddings and self.num_outputs != self.vocab_size:
      raise ValueError(f"tied embeddings need num_outputs ({self.num_outputs}) == vocab_size "
                       f"({self.vocab_size})")
    if tokens_BT.ndim != 2:
      raise ValueError(f"TransformerLM takes tokens (B, T), got shape {tokens_BT.shape}")
    embed = nn.Embed(self.vocab_size, self.features, embedding_init=embed_init, name="embed")
    x_BTD = self.add_positions(embed(tokens_BT), self.positions(tokens_BT.shape[1], decode), train)
    h_BTD = self.encode(x_BTD, causal=True, train=train, decode=decode)
    # The head runs in the compute dtype too (with GPT-2's vocabulary it is a third of the FLOPs);
    # the logits come back as float32 for the softmax and the loss.
    dtype = DTYPES[self.dtype]
    if self.tie_embeddings:
      # In the compute dtype, then float32 (as the untied head below): with
      # preferred_element_type=float32 the logits' float32 cotangent would meet the bfloat16
      # operands in the backward pass, and both of its matmuls would run in float32.
      return jnp.einsum("btd,vd->btv", h_BTD.astype(dtype),
                        embed.embedding.astype(dtype)).astype(jnp.float32)
    return nn.Dense(self.num_outputs, dtype=dtype, name="head")(h_BTD).astype(jnp.float32)


def attention_weights(model: Transformer, params, x, **kwargs) -> jax.Array:
  """Every layer's attention weights in one forward pass (train=False): `(num_layers, B,
  num_heads, T, T)`, where T counts the [CLS] token of a classifier. Needs the 'xla' kernel.

  `kwargs` go to the model's call (e.g. `lengths=`).
  """
  if model.attention_kernel != "xla":
    raise ValueError(f"attention weights need attention_kernel='xla', not "
                     f"{model.attention_kernel!r}")
  _, state = model.apply({"params": params}, x, mutable=["intermediates"], **kwargs)
  sown = state["intermediates"]
  if model.scan_layers:
    return sown["blocks"]["attention"]["attention_weights"][0]
  return jnp.stack([sown[f"block_{i}"]["attention"]["attention_weights"][0]
                    for i in range(model.num_layers)])
