"""bfloat16: every model family's traced program really multiplies in bfloat16 (the operands of
each dot_general and convolution in its jaxpr), keeps float32 parameters and logits, and its
outputs differ from float32's by bfloat16's rounding: more than nothing (a dtype that is ignored
gives float32's outputs exactly), less than a few per cent of the outputs' scale."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nets
from nets.cnn import MLP, ConvNet, ResNet
from nets.recurrent import CELLS, RecurrentNet
from nets.seq2seq import RNNSeq2Seq, TransformerSeq2Seq
from nets.transformer import TransformerClassifier, TransformerLM

MULTIPLIES = ("dot_general", "conv_general_dilated")


def normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


TOKENS = jnp.asarray(np.random.default_rng(0).integers(0, 11, (2, 8)), jnp.int32)
PAIRS = jnp.asarray(np.random.default_rng(1).integers(1, 11, (2, 2, 8)), jnp.int32)  # source, target
# (model, input, the size of its float32 classifier head's outputs or None): each model of
# nets.MODELS at test sizes (`test_every_registered_model_is_checked`), the recurrent one with
# every cell of nets.recurrent.CELLS. The recurrent and the Transformer classifiers keep their
# head, one tiny matmul on a pooled vector, in float32 (nets/layers.py's precision policy); every
# other matmul and convolution, the LM head included, is in the compute dtype.
MODELS = {
    "mlp": (MLP(hidden=(32, 32)), normal(0, (4, 40, 1)), None),
    "convnet": (ConvNet(features=(8, 8), norm="batch"), normal(0, (4, 40, 1)), None),
    "resnet": (ResNet(num_outputs=10, depth=18, width=4), normal(0, (2, 8, 8, 3)), None),
    **{f"rnn_{cell}": (RecurrentNet(features=16, cell=cell), normal(0, (2, 6, 3)), 10)
       for cell in sorted(CELLS)},
    "transformer": (TransformerClassifier(num_outputs=3, patch_size=2, num_layers=2, num_heads=2,
                                          features=16, max_len=16), normal(0, (2, 8, 2)), 3),
    "transformer_lm": (TransformerLM(vocab_size=11, num_outputs=11, num_layers=2, num_heads=2,
                                     features=16, max_len=16), TOKENS, None),
    "rnn_seq2seq_additive": (RNNSeq2Seq(vocab_size=11, num_outputs=11, features=16, embed_dim=8,
                                        attention_dim=16), PAIRS, None),
    "rnn_seq2seq_multiplicative": (RNNSeq2Seq(vocab_size=11, num_outputs=11, features=16,
                                              embed_dim=8, attention="multiplicative",
                                              bidirectional=True), PAIRS, None),
    "transformer_seq2seq": (TransformerSeq2Seq(vocab_size=11, num_outputs=11, num_layers=1,
                                               num_heads=2, features=16, max_len=16), PAIRS, None),
}


def test_every_registered_model_is_checked():
  """A model added to nets.MODELS needs a test-size instance in MODELS above, where its bfloat16
  policy is checked."""
  missing = sorted(set(nets.MODELS) - {name for name, cls in nets.MODELS.items()
                                        for model, _, _ in MODELS.values() if type(model) is cls})
  assert not missing, f"tests/test_precision.py's MODELS has no test-size instance of {missing}"


def multiplications(jaxpr) -> list[tuple[str, tuple]]:
  """(primitive, operand dtypes) of every matmul and convolution in `jaxpr`, including those inside
  scans, remat, pjit and custom derivatives."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in MULTIPLIES:
      found.append((eqn.primitive.name, tuple(str(v.aval.dtype) for v in eqn.invars),
                    tuple(v.aval.shape for v in eqn.invars)))
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else [param]:
        if hasattr(sub, "eqns"):
          found += multiplications(sub)
        elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
          found += multiplications(sub.jaxpr)
  return found


def assert_rounded_like_bfloat16(low, full):
  """`low` (a bfloat16 model's float32 outputs) differs from `full` (float32's) by more than nothing
  (a dtype that is ignored gives float32's exactly) and by less than 3 % of the outputs' largest
  magnitude (bfloat16 keeps 8 significant bits: 0.4 % a rounding; the test models: 0.2-1.4 %)."""
  assert low.dtype == full.dtype == jnp.float32
  error = float(jnp.max(jnp.abs(low - full)) / jnp.max(jnp.abs(full)))
  assert 1e-4 < error < 0.03, error


def variables_of(model, x):
  return model.init(jax.random.PRNGKey(0), x, train=False)


def apply_fn(model, dtype):
  return lambda variables, x: model.clone(dtype=dtype).apply(variables, x, train=False)


def of_the_head(multiplication, head: int | None) -> bool:
  """A matmul of the float32 classifier head (or of its gradient): an operand has its outputs."""
  return head is not None and any(shape[-1] == head for shape in multiplication[2])


# make test keeps one seq2seq model (the additive RNN's, the default); test-slow runs the others.
SLOW_SEQ2SEQ = ("rnn_seq2seq_multiplicative", "transformer_seq2seq")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in ("resnet", "transformer", *SLOW_SEQ2SEQ) else n
                                  for n in MODELS])  # ResNet-18 compiles for a minute: test-slow
def test_bfloat16_models_multiply_in_bfloat16(name):
  """The forward pass's jaxpr: with dtype='bfloat16' every matmul and convolution (but a float32
  classifier head) takes two bfloat16 operands; with the default, two float32 ones. The
  gradient's: no matmul but the head's is float32 x float32 (the cotangent of a matmul whose
  output is float32, as attention's, is float32 and meets a bfloat16 operand)."""
  model, x, head = MODELS[name]
  variables = variables_of(model, x)
  for dtype in ("bfloat16", "float32"):
    forward = apply_fn(model, dtype)
    found = multiplications(jax.make_jaxpr(forward)(variables, x).jaxpr)
    assert len([f for f in found if not of_the_head(f, head)]) >= 2, (name, found)
    wrong = [f for f in found if set(f[1]) != {dtype} and not of_the_head(f, head)]
    assert not wrong, (name, dtype, wrong[:3])

  loss = lambda v: jnp.sum(apply_fn(model, "bfloat16")(v, x).astype(jnp.float32) ** 2)
  found = multiplications(jax.make_jaxpr(jax.grad(loss))(variables).jaxpr)
  assert sum("bfloat16" in f[1] for f in found) >= 4, name  # forward and backward
  wrong = [f for f in found if "bfloat16" not in f[1] and not of_the_head(f, head)]
  assert not wrong, (name, wrong[:3])


def test_the_tied_lm_head_and_both_its_gradients_multiply_in_bfloat16():
  """Stricter than the above for the tied head: a float32 cotangent meeting the bfloat16 embedding
  would make its two backward matmuls float32 ones (TF32 on a GPU: GPT-2 small's head is a fifth
  of its FLOPs), which the test above lets pass as mixed."""
  model = TransformerLM(vocab_size=11, num_outputs=11, num_layers=1, num_heads=2, features=16,
                        max_len=16, tie_embeddings=True, dtype="bfloat16")
  variables = model.init(jax.random.PRNGKey(0), TOKENS)
  loss = lambda v: jnp.sum(jax.nn.log_softmax(model.apply(v, TOKENS)) ** 2)
  found = multiplications(jax.make_jaxpr(jax.grad(loss))(variables).jaxpr)
  head = [f for f in found if any(11 in shape for shape in f[2])]
  assert len(head) == 3, head  # forward, and the gradients of the features and of the embedding
  assert all(set(f[1]) == {"bfloat16"} for f in head), head


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in ("resnet", "rnn_seq2seq_additive", *SLOW_SEQ2SEQ) else n
                                  for n in MODELS])  # ResNet-18's two compiles, 15 s: test-slow
def test_bfloat16_keeps_float32_params_and_logits_and_rounds_the_outputs(name):
  model, x, _ = MODELS[name]
  variables = variables_of(model, x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  assert_rounded_like_bfloat16(*(jax.jit(apply_fn(model, d))(variables, x)
                                 for d in ("bfloat16", "float32")))
