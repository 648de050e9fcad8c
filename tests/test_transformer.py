import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets.attention import MultiHeadAttention, causal_mask, padding_mask, rope
from nets.decoding import generate, init_cache, sample_logits
from nets.transformer import TransformerClassifier, TransformerLM, attention_weights
from tests.test_precision import assert_rounded_like_bfloat16

B, T, D, N, V = 2, 8, 16, 2, 11
LENGTHS = jnp.array([5, 8])
TINY = dict(num_layers=2, num_heads=N, features=D, max_len=16)


def normal(seed, shape):
  # numpy, not jax.random: every new shape would cost a compilation.
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def tokens(seed, shape=(B, T)):
  return jnp.asarray(np.random.default_rng(seed).integers(0, V, shape), jnp.int32)


def close(a, b, atol=1e-5):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5), a, b)


def init(model, x, **kwargs):
  return model.init(jax.random.key(0), x, **kwargs)["params"]


@pytest.fixture(scope="module")
def attention():
  """Our attention with the params of a flax MultiHeadDotProductAttention."""
  flax_mha = nn.MultiHeadDotProductAttention(num_heads=N, qkv_features=D)
  x = normal(0, (B, T, D))
  params = flax_mha.init(jax.random.key(1), x)["params"]
  # Nonzero biases (flax's are zero), so that a misplaced bias shows.
  params = jax.tree.map(lambda p: p + 0.1 * normal(2, p.shape), params)
  return flax_mha, MultiHeadAttention(N, D), params, x


def test_attention_equals_flax_with_the_same_weights(attention):
  flax_mha, mha, params, x = attention
  mask = nn.combine_masks(causal_mask(T), padding_mask(LENGTHS, T), dtype=bool)
  for kwargs, flax_mask in [({}, None), ({"causal": True, "lengths": LENGTHS}, mask),
                            ({"mask": mask}, mask)]:
    close(mha.apply({"params": params}, x, **kwargs),
          flax_mha.apply({"params": params}, x, mask=flax_mask))


def test_kernels_agree(attention):
  _, mha, params, x = attention
  fused = mha.clone(kernel="dot_product")
  random_mask = normal(3, (B, 1, T, T)) > 0
  for kwargs in [{}, {"causal": True, "lengths": LENGTHS}, {"mask": random_mask}]:
    close(fused.apply({"params": params}, x, **kwargs), mha.apply({"params": params}, x, **kwargs))
  with pytest.raises(ValueError, match="kernel='xla'"):
    fused.apply({"params": params}, x, return_weights=True)


def test_masked_keys_change_nothing_and_get_zero_weight(attention):
  _, mha, params, x = attention
  np.testing.assert_array_equal(padding_mask(LENGTHS, T)[:, 0, 0], jnp.arange(T) < LENGTHS[:, None])
  apply = lambda x, **kw: mha.apply({"params": params}, x, return_weights=True, **kw)
  # Step 6 is padding in row 0 (length 5) and the future of steps 0..5 in both rows.
  x_changed = x.at[:, 6].add(10.0)
  cases = [({"lengths": LENGTHS}, padding_mask(LENGTHS, T)), ({"causal": True}, causal_mask(T)),
           ({"causal": True, "lengths": LENGTHS},
            nn.combine_masks(causal_mask(T), padding_mask(LENGTHS, T), dtype=bool))]
  for kwargs, allowed in cases:
    out, weights_BNTS = apply(x, **kwargs)
    close(weights_BNTS.sum(-1), jnp.ones((B, N, T)))
    assert jnp.all(jnp.where(allowed, 0.0, weights_BNTS) == 0.0)
    changed, _ = apply(x_changed, **kwargs)
    unaffected = [0, 1, 2, 3, 4, 5] if kwargs.get("causal") else [0, 1, 2, 3, 4, 5, 7]
    close(changed[0, unaffected], out[0, unaffected])
    assert not np.allclose(changed[1], out[1])
  close(changed[1, :6], out[1, :6])


def test_rope_makes_scores_depend_on_relative_position():
  q, k = normal(0, (1, 1, 1, 8)), normal(1, (1, 1, 1, 8))
  score = lambda m, n: jnp.sum(rope(q, jnp.array([m])) * rope(k, jnp.array([n])))
  close(score(3, 1), score(10, 8))
  close(score(0, 5), score(4, 9))
  assert not np.isclose(score(3, 1), score(1, 3))
  close(jnp.sum(rope(q, jnp.array([0])) * rope(k, jnp.array([0]))), jnp.sum(q * k))


@pytest.mark.parametrize("x,pool", [(tokens(0), "cls"), pytest.param(normal(0, (B, 16, 3)), "mean", marks=pytest.mark.slow),
                                    (normal(0, (B, 8, 8, 3)), "cls")],
                         ids=["tokens", "patches_1d", "patches_2d"])
def test_classifier_output_shapes(x, pool):
  model = TransformerClassifier(num_outputs=3, vocab_size=V if x.ndim == 2 else 0, pool=pool,
                                **TINY)
  assert model.apply({"params": init(model, x)}, x).shape == (B, 3)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_classifier_ignores_padding(pool):
  model = TransformerClassifier(num_outputs=3, vocab_size=V, pool=pool, **TINY)
  x = tokens(0)
  params = init(model, x)
  apply = lambda x: model.apply({"params": params}, x, lengths=LENGTHS)
  close(apply(x.at[0, 5:].set(0)), apply(x))


@pytest.mark.slow  # a minute on 2 cores: `make test-slow`
def test_scan_layers_equals_a_python_loop_of_blocks():
  model = TransformerClassifier(num_outputs=3, vocab_size=V, pos_encoding="rotary", **TINY)
  x = tokens(0)
  params = init(model, x)
  blocks = [params.pop(f"block_{i}") for i in range(TINY["num_layers"])]
  scanned = {**params, "blocks": jax.tree.map(lambda *p: jnp.stack(p), *blocks)}
  shapes = jax.eval_shape(model.clone(scan_layers=True).init, jax.random.key(0), x)["params"]
  assert jax.tree.map(jnp.shape, scanned) == jax.tree.map(jnp.shape, shapes)
  params.update({f"block_{i}": b for i, b in enumerate(blocks)})
  close(model.clone(scan_layers=True).apply({"params": scanned}, x),
        model.apply({"params": params}, x))
  close(attention_weights(model.clone(scan_layers=True), scanned, x),
        attention_weights(model, params, x))


@pytest.mark.slow  # a minute on 2 cores: `make test-slow`
def test_remat_gives_the_same_outputs_and_gradients():
  model = TransformerClassifier(num_outputs=3, vocab_size=V, dropout=0.1, attention_dropout=0.1,
                                **{**TINY, "num_layers": 1})
  x = tokens(0)
  params = init(model, x)

  def loss_and_grads(model):
    loss = lambda p: model.apply({"params": p}, x, train=True,
                                 rngs={"dropout": jax.random.key(1, impl="rbg")}).mean()
    return jax.jit(jax.value_and_grad(loss))(params)

  # Equal up to float rounding: XLA may fuse the recomputed forward differently. (The rbg key
  # only makes the dropout masks quicker to compile.)
  close(loss_and_grads(model.clone(remat=True)), loss_and_grads(model), atol=1e-4)


def test_bfloat16_keeps_float32_params_and_logits():
  model = TransformerClassifier(num_outputs=3, patch_size=2, **TINY)
  x = normal(0, (B, T, 2))
  params = init(model.clone(dtype="bfloat16"), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  logits = model.clone(dtype="bfloat16").apply({"params": params}, x)
  assert_rounded_like_bfloat16(logits, model.apply({"params": params}, x))


def test_tied_embeddings_have_no_head():
  model = TransformerLM(vocab_size=V, num_outputs=V, tie_embeddings=True, **TINY)
  params = init(model, tokens(0))
  assert "head" not in params
  assert model.apply({"params": params}, tokens(0)).shape == (B, T, V)


def test_lm_is_causal():
  model = TransformerLM(vocab_size=V, num_outputs=V, **TINY)
  x = tokens(0)
  params = init(model, x)
  logits = model.apply({"params": params}, x)
  changed = model.apply({"params": params}, x.at[:, 5].set((x[:, 5] + 1) % V))
  close(changed[:, :5], logits[:, :5])
  assert not np.allclose(changed[:, 5:], logits[:, 5:])


@pytest.fixture(scope="module")
def lm():
  model = TransformerLM(vocab_size=V, num_outputs=V, **TINY)
  return model, init(model, tokens(0))


def test_attention_weights_of_every_layer(lm):
  model, params = lm
  x = tokens(0)
  weights = attention_weights(model, params, x)
  assert weights.shape == (TINY["num_layers"], B, N, T, T)
  close(weights.sum(-1), jnp.ones(weights.shape[:-1]))
  assert jnp.all(jnp.triu(weights, k=1) == 0)
  with pytest.raises(ValueError, match="attention_kernel='xla'"):
    attention_weights(model.clone(attention_kernel="dot_product"), params, x)


@pytest.mark.parametrize("pos_encoding,scan_layers,kernel", [
    pytest.param("rotary", True, "xla", marks=pytest.mark.slow),
    pytest.param("sinusoidal", False, "xla", marks=pytest.mark.slow),
    ("learned", False, "dot_product")])
def test_kv_cache_decoding_equals_full_recomputation(pos_encoding, scan_layers, kernel):
  model = TransformerLM(vocab_size=V, num_outputs=V, pos_encoding=pos_encoding,
                        scan_layers=scan_layers, attention_kernel=kernel, **TINY)
  x = tokens(0)
  params = init(model, x)
  full = model.apply({"params": params}, x)
  decode = jax.jit(lambda cache, x: model.apply({"params": params, "cache": cache}, x,
                                                decode=True, mutable=["cache"]))
  prefix, state = decode(init_cache(model, B, T), x[:, :3])
  close(prefix, full[:, :3])
  cache = state["cache"]
  for t in range(3, T):
    step, state = decode(cache, x[:, t:t + 1])
    cache = state["cache"]
    close(step[:, 0], full[:, t])


def test_greedy_generation_is_the_argmax_of_full_recomputation(lm):
  model, params = lm
  prompt = tokens(1, (B, 3))
  new = generate(model, params, prompt, 5, jax.random.key(0), temperature=0.0)
  assert new.shape == (B, 5)
  logits = model.apply({"params": params}, jnp.concatenate([prompt, new], axis=1))
  np.testing.assert_array_equal(new, jnp.argmax(logits[:, 2:-1], axis=-1))


def test_top_k_1_and_tiny_top_p_are_greedy(lm):
  model, params = lm
  prompt = tokens(1, (B, 3))
  greedy = generate(model, params, prompt, 5, jax.random.key(0), temperature=0.0)
  for kwargs in [{"top_k": 1}, {"top_p": 1e-6}]:
    np.testing.assert_array_equal(generate(model, params, prompt, 5, jax.random.key(1), **kwargs),
                                  greedy)


def test_sampling_draws_only_from_the_top_k_and_the_nucleus():
  logits = normal(0, (1, V))
  keys = jax.random.split(jax.random.key(0), 500)
  draw = jax.jit(jax.vmap(lambda key, t, k, p: sample_logits(key, logits, t, k, p)[0],
                          in_axes=(0, None, None, None)))
  order = np.argsort(-np.asarray(logits[0]))
  assert set(np.asarray(draw(keys, 2.0, 3, 1.0))) == set(order[:3])
  probs = np.asarray(jax.nn.softmax(logits[0]))[order]
  nucleus = order[:np.searchsorted(np.cumsum(probs), 0.6) + 1]
  assert set(np.asarray(draw(keys, 1.0, 0, 0.6))) == set(nucleus)
  assert len(set(np.asarray(draw(keys, 1.0, 0, 1.0)))) > 3


@pytest.mark.parametrize("field,value", [("pos_encoding", "alibi"), ("dtype", "float16"),
                                         ("attention_kernel", "flash"), ("pool", "max")])
def test_bad_fields_raise(field, value):
  model = TransformerClassifier(vocab_size=V, **{**TINY, field: value})
  with pytest.raises(ValueError, match=field):
    init(model, tokens(0))


def test_sinusoidal_positions_with_odd_features_is_a_value_error():
  """(It was a broadcasting error between (1, T, 9) and (T, 8) from inside the model.)"""
  model = TransformerClassifier(vocab_size=V, **{**TINY, "features": 9, "num_heads": 3,
                                                 "pos_encoding": "sinusoidal"})
  with pytest.raises(ValueError, match="pos_encoding='sinusoidal' needs an even features"):
    init(model, tokens(0))


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="a GPU runs the cuDNN kernel")
def test_the_cudnn_kernel_off_a_gpu_is_a_value_error():
  """(jax's own error, a RuntimeError from deep inside the first call, is no user error.)"""
  with pytest.raises(ValueError, match="attention_kernel='cudnn' needs a CUDA GPU"):
    init(TransformerClassifier(vocab_size=V, **{**TINY, "attention_kernel": "cudnn"}), tokens(0))
