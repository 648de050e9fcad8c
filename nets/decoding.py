"""Decoding an autoregressive model under `jit`: sampling one token from logits (greedy, temperature,
top-k, top-p) and generating with a Transformer LM's KV cache, one `lax.scan` over the new tokens."""
import functools

import jax
import jax.numpy as jnp

from nets.transformer import TransformerLM


def sample_logits(key, logits_BV, temperature=1.0, top_k=0, top_p=1.0) -> jax.Array:
  """One token per row (B,): greedy when temperature == 0, else a draw from
  softmax(logits / temperature) restricted to the top_k most likely tokens (0: all) and then to
  the smallest set of them whose probability reaches top_p (nucleus sampling; Holtzman et al.
  2020). The settings may be traced, so that changing them does not recompile."""
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
