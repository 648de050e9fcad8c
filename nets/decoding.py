"""Decoding an autoregressive model under `jit`: sampling one token from logits (greedy, temperature,
top-k, top-p) and generating with a Transformer LM's KV cache, one `lax.scan` over the new tokens;
greedy and beam search for the encoder-decoders of nets/seq2seq.py."""
import functools

import jax
import jax.numpy as jnp

from nets.seq2seq import RNNSeq2Seq, TransformerSeq2Seq
from nets.transformer import TransformerLM


def sample_logits(key, logits_BV, temperature=1.0, top_k=0, top_p=1.0) -> jax.Array:
  """One token per row (B,): greedy when temperature == 0, else a draw from
  softmax(logits / temperature) restricted to the top_k most likely tokens (0: all; tokens tied
  with the k-th all stay, as in Hugging Face's TopKLogitsWarper) and then to the smallest set of
  them whose probability reaches top_p (nucleus sampling; Holtzman et al. 2020). The settings may
  be traced, so that changing them does not recompile."""
  V = logits_BV.shape[-1]
  logits_BV = logits_BV.astype(jnp.float32)
  scaled_BV = logits_BV / jnp.where(temperature > 0, temperature, 1.0)
  sorted_BV = jnp.flip(jnp.sort(scaled_BV, axis=-1), axis=-1)
  k = jnp.where((top_k > 0) & (top_k < V), top_k, V)
  sorted_BV = jnp.where(jnp.arange(V) < k, sorted_BV, -jnp.inf)
  probs_BV = jax.nn.softmax(sorted_BV, axis=-1)
  # A token stays if the tokens ranked above it have less than top_p of the mass, so the most
  # likely one always stays. top_p >= 1 keeps all, whatever the rounding of the cumsum.
  keep_BV = (jnp.cumsum(probs_BV, axis=-1) - probs_BV < top_p) | (top_p >= 1)
  keep_BV &= jnp.isfinite(sorted_BV)
  threshold_B1 = jnp.min(jnp.where(keep_BV, sorted_BV, jnp.inf), axis=-1, keepdims=True)
  filtered_BV = jnp.where(scaled_BV >= threshold_B1, scaled_BV, -jnp.inf)
  sampled_B = jax.random.categorical(key, filtered_BV)
  return jnp.where(temperature > 0, sampled_B, jnp.argmax(logits_BV, axis=-1))


def init_cache(model: TransformerLM, batch_size: int, length: int):
  """An empty KV cache for `length` steps: the 'cache' collection for `decode=True`."""
  tokens_BT = jnp.zeros((batch_size, length), jnp.int32)
  shapes = jax.eval_shape(functools.partial(model.init, decode=True), jax.random.key(0), tokens_BT)
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["cache"])


def generate(model: TransformerLM, params, prompt_BT, max_new_tokens: int, rng,
             temperature=1.0, top_k=0, top_p=1.0) -> jax.Array:
  """Continues the prompts `(B, T)` by `max_new_tokens` tokens, returned as `(B, max_new_tokens)`.

  One pass over the prompt fills a KV cache of size T + max_new_tokens - 1, then a `lax.scan`
  feeds back one token per step (drawn by `sample_logits`; temperature 0 is greedy), all in one
  jitted function. Changing the sampling settings does not recompile; changing the model, the
  shapes or max_new_tokens does.
  """
  if max_new_tokens < 1:
    raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
  # Positional and as arrays, so that every call with these shapes hits one jit cache entry.
  settings = (jnp.float32(temperature), jnp.int32(top_k), jnp.float32(top_p))
  return decode_loop(model, params, prompt_BT, max_new_tokens, rng, *settings)


@functools.partial(jax.jit, static_argnums=(0, 3))
def decode_loop(model, params, prompt_BT, max_new_tokens, rng, temperature, top_k, top_p):
  """`generate`'s jitted body."""
  B, T = prompt_BT.shape
  cache = init_cache(model, B, T + max_new_tokens - 1)

  def step(cache, tokens_BL):
    logits_BLV, state = model.apply({"params": params, "cache": cache}, tokens_BL, decode=True,
                                    mutable=["cache"])
    return state["cache"], logits_BLV[:, -1]

  def feed_back(carry, key):
    cache, token_B = carry
    cache, logits_BV = step(cache, token_B[:, None])
    token_B = sample_logits(key, logits_BV, temperature, top_k, top_p)
    return (cache, token_B), token_B

  keys = jax.random.split(rng, max_new_tokens)
  cache, logits_BV = step(cache, prompt_BT)
  first_B = sample_logits(keys[0], logits_BV, temperature, top_k, top_p)
  _, rest_NB = jax.lax.scan(feed_back, (cache, first_B), keys[1:])
  return jnp.concatenate([first_B[:, None], rest_NB.T], axis=1)


# Encoder-decoders. The decoder's state is the RNN's carry, or the Transformer's KV cache; token 0
# is padding, which follows the end token in every output.
Seq2Seq = RNNSeq2Seq | TransformerSeq2Seq


def writable(logp_BV, bos: int):
  """Log-probabilities with padding (0) and the start token ruled out: no target holds them before
  its end token, yet a weak model can rank them first, and an output with padding inside would
  read as ended there."""
  token_V = jnp.arange(logp_BV.shape[-1])
  return jnp.where((token_V == 0) | (token_V == bos), -jnp.inf, logp_BV)


def start(model: Seq2Seq, params, source_BS, max_len: int):
  """The encoder's memory and the decoder's initial state for up to `max_len` steps."""
  memory = model.apply({"params": params}, source_BS, method="encode")
  if isinstance(model, RNNSeq2Seq):
    return memory, memory["carry"]
  x_B2L = jnp.zeros((source_BS.shape[0], 2, max_len), jnp.int32)
  shapes = jax.eval_shape(functools.partial(model.init, decode=True), jax.random.key(0), x_B2L)
  return memory, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["cache"])


def step(model: Seq2Seq, params, memory, state, tokens_B):
  """One decoder step: (next-token log-probabilities (B, V), the new state)."""
  if isinstance(model, RNNSeq2Seq):
    logits_B1V, _, state = model.apply({"params": params}, memory, tokens_B[:, None], state,
                                       method="decode")
  else:
    logits_B1V, variables = model.apply({"params": params, "cache": state}, memory,
                                        tokens_B[:, None], decode=True, method="decode",
                                        mutable=["cache"])
    state = variables["cache"]
  return jax.nn.log_softmax(logits_B1V[:, 0].astype(jnp.float32)), state


@functools.partial(jax.jit, static_argnames=("model", "max_len"))
def greedy(model: Seq2Seq, params, source_BS, max_len: int, bos: int, eos: int):
  """The most likely token at each step (`writable`: not padding, not `bos`): `(tokens
  (B, max_len), their log-probability (B,))`; after the end token `eos` come padding tokens (0)."""
  memory, state = start(model, params, source_BS, max_len)

  def body(carry, _):
    state, token_B, done_B, score_B = carry
    logp_BV, state = step(model, params, memory, state, token_B)
    token_B = jnp.where(done_B, 0, jnp.argmax(writable(logp_BV, bos), -1))
    score_B += jnp.where(done_B, 0.0, jnp.take_along_axis(logp_BV, token_B[:, None], -1)[:, 0])
    return (state, token_B, done_B | (token_B == eos), score_B), token_B

  B = source_BS.shape[0]
  init = (state, jnp.full((B,), bos, jnp.int32), jnp.zeros(B, bool), jnp.zeros(B))
  (_, _, _, score_B), tokens_TB = jax.lax.scan(body, init, length=max_len)
  return tokens_TB.T, score_B


def length_penalty(lengths, alpha: float):
  """Wu et al. (2016): ((5 + |Y|) / 6)^alpha; scores are divided by it to compare lengths."""
  return ((5.0 + lengths) / 6.0) ** alpha


@functools.partial(jax.jit, static_argnames=("model", "max_len", "beam_size"))
def beam_search(model: Seq2Seq, params, source_BS, max_len: int, beam_size: int, bos: int,
                eos: int, alpha: float = 0.6):
  """Beam search: `(tokens (B, K, max_len), log-probabilities (B, K))`, the K beams sorted by
  length-normalised score, log p(Y) / length_penalty(|Y|, alpha) (|Y| counts the end token).

  Each step extends every live beam by every `writable` token and keeps the K best by
  log-probability; a finished beam (past `eos`) carries on with padding at no cost. K = 1 is
  greedy decoding."""
  B, K = source_BS.shape[0], beam_size
  memory, state = start(model, params, jnp.repeat(source_BS, K, axis=0), max_len)
  rows = lambda tree, index_BK: jax.tree.map(  # beam rows of the (B*K, ...) leaves; not scalars
      lambda a: a[(jnp.arange(B)[:, None] * K + index_BK).reshape(-1)] if a.ndim else a, tree)

  def body(carry, t):
    state, tokens_BKT, score_BK, done_BK, length_BK = carry
    logp_BV, state = step(model, params, memory, state, tokens_BKT[:, :, t - 1].reshape(-1))
    V = logp_BV.shape[-1]
    only_padding_V = jnp.where(jnp.arange(V) == 0, 0.0, -jnp.inf)
    logp_BKV = jnp.where(done_BK[..., None], only_padding_V,
                         writable(logp_BV, bos).reshape(B, K, V))
    score_BK, index_BK = jax.lax.top_k((score_BK[..., None] + logp_BKV).reshape(B, K * V), K)
    beam_BK, token_BK = index_BK // V, index_BK % V
    keep = lambda a: jnp.take_along_axis(a, beam_BK.reshape(B, K, *[1] * (a.ndim - 2)), axis=1)
    done_BK, length_BK = keep(done_BK), keep(length_BK)
    tokens_BKT = keep(tokens_BKT).at[:, :, t].set(token_BK)
    return (rows(state, beam_BK), tokens_BKT, score_BK, done_BK | (token_BK == eos),
            length_BK + ~done_BK), None

  # Column 0 holds the start token; only the first beam is live at first, so that the K beams differ.
  tokens_BKT = jnp.zeros((B, K, max_len + 1), jnp.int32).at[:, :, 0].set(bos)
  score_BK = jnp.where(jnp.arange(K) == 0, 0.0, -jnp.inf) * jnp.ones((B, 1))
  init = (state, tokens_BKT, score_BK, jnp.zeros((B, K), bool), jnp.zeros((B, K)))
  (_, tokens_BKT, score_BK, _, length_BK), _ = jax.lax.scan(body, init, jnp.arange(1, max_len + 1))
  order_BK = jnp.argsort(-score_BK / length_penalty(length_BK, alpha), axis=-1)
  return (jnp.take_along_axis(tokens_BKT[:, :, 1:], order_BK[..., None], axis=1),
          jnp.take_along_axis(score_BK, order_BK, axis=1))
