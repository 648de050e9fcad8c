"""Multi-head attention (self- or cross-) with boolean masks, rotary position embeddings and a KV
cache.

Masks are boolean, True where a query may attend to a key, and broadcast to `(B, N, T, S)`
(batch, heads, queries, keys); flax's `nn.make_causal_mask` and `nn.combine_masks` and our
`padding_mask` (from lengths) build them.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nets.layers import check_choice

# jax.nn.dot_product_attention's `implementation` for each kernel but 'xla' (our own jnp).
KERNELS = {"xla": None, "dot_product": None, "cudnn": "cudnn"}


def padding_mask(lengths_B: jax.Array, S: int) -> jax.Array:
  """(B, 1, 1, S): key s of example b is valid when s < lengths_B[b]."""
  return (jnp.arange(S) < lengths_B[:, None])[:, None, None, :]


def causal_mask(T: int) -> jax.Array:
  """(1, 1, T, T): query t sees keys 0..t."""
  return nn.make_causal_mask(jnp.ones((1, T)), dtype=bool)


def rope(x_BTNH: jax.Array, positions: jax.Array, base: float = 10_000.0) -> jax.Array:
  """Rotary position embedding (Su et al. 2021), GPT-NeoX layout: the pair (x_i, x_{i+H/2}) turns
  by the angle `position * base**(-2i/H)`, so q.k depends on positions only through their
  difference. `positions` is `(T,)` or `(B, T)`."""
  H = x_BTNH.shape[-1]
  if H % 2:
    raise ValueError(f"rotary embeddings need an even head_dim, got {H}")
  inv_freq_F = base ** (-jnp.arange(H // 2, dtype=jnp.float32) * 2 / H)
  angles = positions[..., None].astype(jnp.float32) * inv_freq_F
  sin, cos = jnp.sin(angles)[..., None, :], jnp.cos(angles)[..., None, :]  # broadcast over heads
  x1, x2 = jnp.split(x_BTNH.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x_BTNH.dtype)


def dot_product_weights(q_BTNH, k_BSNH, mask=None) -> jax.Array:
  """softmax(q k^T / sqrt(H)) `(B, N, T, S)`, float32 logits and softmax."""
  logits_BNTS = jnp.einsum("btnh,bsnh->bnts", q_BTNH, k_BSNH, preferred_element_type=jnp.float32)
  logits_BNTS = logits_BNTS / math.sqrt(q_BTNH.shape[-1])
  if mask is not None:
    # Finite, so that a row with every key masked gives uniform weights rather than NaNs.
    logits_BNTS = jnp.where(mask, logits_BNTS, jnp.finfo(jnp.float32).min)
  return jax.nn.softmax(logits_BNTS, axis=-1)


class MultiHeadAttention(nn.Module):
  """Multi-head attention: `out = concat_n(softmax(q_n k_n^T / sqrt(H)) v_n) W_o`, with q from
  `x_BTD` and k, v from `kv_BSD` (cross-attention, e.g. a decoder over its encoder's states), or
  from `x_BTD` too when `kv_BSD` is None (self-attention).

  The projections have the param names and shapes of flax's `nn.MultiHeadDotProductAttention`
  (query/key/value kernels `(D, N, H)`, out kernel `(N, H, features)`), so their params load.

  kernel: 'xla' writes the attention out in jnp and can return (and sows into 'intermediates')
  the weights `(B, N, T, S)`. 'dot_product' calls `jax.nn.dot_product_attention` with
  `implementation=None`, leaving the backend to jax (jax 0.10 always picks XLA), and passes
  `causal` and `lengths` as `is_causal` and `key_value_seq_lengths`, the forms cuDNN's flash
  kernel takes without a dense mask. 'cudnn' forces that kernel (GPU and bfloat16/float16 only).
  `dropout` (on the attention weights) needs the 'xla' kernel.

  decode: the keys and values of the new steps go into a fixed-size cache in the 'cache'
  collection (`cached_key`, `cached_value` `(B, S, N, H)`, `cache_index`), as in flax. A first
  call with `decode=True` under `init` sizes the cache from its input's length S; later calls
  (with `mutable=['cache']`) take the next L >= 1 steps, which attend causally to the cache
  (keys are cached after their rotation). Nothing checks for writes past the cache's end. The
  cache is for self-attention: cross-attention takes all of `kv_BSD` at every call.
  """
  num_heads: int
  features: int
  head_dim: int = 0  # 0: features // num_heads
  dropout: float = 0.0
  kernel: str = "xla"
  rope: bool = False
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BTD, kv_BSD=None, *, mask=None, causal: bool = False, lengths=None,
               decode: bool = False, return_weights: bool = False, train: bool = False):
    """`mask` broadcasts to (B, N, T, S); `lengths` (B,) marks keys s >= lengths[b] as padding."""
    if kv_BSD is not None and (decode or self.rope):
      raise ValueError("cross-attention (kv_BSD) takes no KV cache (decode) and no rotary positions")
    check_choice("attention kernel", self.kernel, sorted(KERNELS))
    if self.kernel != "xla" and return_weights:
      raise ValueError(f"return_weights needs kernel='xla', not {self.kernel!r}")
    if self.kernel != "xla" and train and self.dropout > 0:
      raise ValueError(f"attention dropout needs kernel='xla', not {self.kernel!r}")
    if not self.head_dim and self.features % self.num_heads:
      raise ValueError(f"features={self.features} is not a multiple of num_heads={self.num_heads}")
    H = self.head_dim or self.features // self.num_heads
    dense = lambda name: nn.DenseGeneral((self.num_heads, H), use_bias=self.use_bias,
                                         dtype=self.dtype, name=name)
    kv_BSD = x_BTD if kv_BSD is None else kv_BSD
    q_BTNH, k_BTNH, v_BTNH = dense("query")(x_BTD), dense("key")(kv_BSD), dense("value")(kv_BSD)

    T = x_BTD.shape[1]
    cached = decode and self.has_variable("cache", "cached_key")
    if decode:  # under init, this creates the cache, sized by the input
      cached_k = self.variable("cache", "cached_key", jnp.zeros, k_BTNH.shape, k_BTNH.dtype)
      cached_v = self.variable("cache", "cached_value", jnp.zeros, v_BTNH.shape, v_BTNH.dtype)
      index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    positions_T = (index.value if cached else 0) + jnp.arange(T)
    if self.rope:
      q_BTNH, k_BTNH = rope(q_BTNH, positions_T), rope(k_BTNH, positions_T)
    k_BSNH, v_BSNH = k_BTNH, v_BTNH
    if cached:
      start = (0, index.value, 0, 0)
      k_BSNH = cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k_BTNH, start)
      v_BSNH = cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v_BTNH, start)
      index.value = index.value + T
      # Each new step sees the cache up to itself; beyond that it is empty.
      cache_mask = jnp.arange(k_BSNH.shape[1]) <= positions_T[:, None]
      mask, causal = nn.combine_masks(mask, cache_mask[None, None], dtype=bool), False

    if self.kernel == "xla":
      S = k_BSNH.shape[1]
      mask = nn.combine_masks(mask, causal_mask(T) if causal else None,
                              None if lengths is None else padding_mask(lengths, S), dtype=bool)
      weights_BNTS = dot_product_weights(q_BTNH, k_BSNH, mask)
      self.sow("intermediates", "attention_weights", weights_BNTS)
      dropped_BNTS = nn.Dropout(self.dropout, deterministic=not train)(weights_BNTS)
      out_BTNH = jnp.einsum("bnts,bsnh->btnh", dropped_BNTS.astype(v_BSNH.dtype), v_BSNH)
    else:
      out_BTNH = jax.nn.dot_product_attention(
          q_BTNH, k_BSNH, v_BSNH, mask=mask, is_causal=causal,
          key_value_seq_lengths=None if lengths is None else lengths.astype(jnp.int32),
          implementation=KERNELS[self.kernel])
    out_BTD = nn.DenseGeneral(self.features, axis=(-2, -1), use_bias=self.use_bias,
                              dtype=self.dtype, name="out")(out_BTNH)
    return (out_BTD, weights_BNTS) if return_weights else out_BTD
