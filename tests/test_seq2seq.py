"""Encoder-decoders (nets/seq2seq.py), their decoding (nets/decoding.py), the transduction tasks
(reversal, dates) and the names the seq2seq analysis reads runs under."""
import datetime
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nets import decoding
from nets.attention import MultiHeadAttention
from nets.seq2seq import ATTENTIONS, RNNSeq2Seq, TransformerSeq2Seq
from experiments import dates_rnn, dates_transformer, seq2seq_rnn
from experiments.analysis import seq2seq as analysis
from train import losses, sweep
from train.data import transduction
from train.steps import create_state, make_train_step

BOS, EOS = transduction.BOS, transduction.EOS
MODELS = {
    **{f"rnn_{a}": RNNSeq2Seq(attention=a, cell="lstm", features=16, embed_dim=8,
                              attention_dim=8, bidirectional=True) for a in ATTENTIONS},
    "rnn_gru_forward": RNNSeq2Seq(attention="additive", cell="gru", features=16, embed_dim=8,
                                  attention_dim=8),
    "transformer": TransformerSeq2Seq(num_layers=2, num_heads=2, features=16, mlp_dim=32,
                                      max_len=16),
    "transformer_rotary": TransformerSeq2Seq(num_layers=1, num_heads=2, features=16,
                                             mlp_dim=32, pos_encoding="rotary"),
}


def reversal_batch(lengths, L=8, seed=0):
  """A reversal batch of sources with these lengths (padded to L)."""
  rng = np.random.default_rng(seed)
  lengths = np.array(lengths, np.int32)
  source = np.where(np.arange(L) < lengths[:, None], rng.integers(3, 13, (len(lengths), L)), 0)
  return transduction.reversal_batch({"source": source.astype(np.int32), "length": lengths}, None)


def batch_with_a_changed_suffix():
  """Sources of 5 and 8 tokens, then the second again with its decoder inputs from position 4 on
  changed."""
  x = reversal_batch([5, 8])["x"]
  later = x[1:].copy()
  later[:, 1, 4:] = 7
  return np.concatenate([x, later])


X = batch_with_a_changed_suffix()


@functools.cache
def params_of(name):
  return jax.jit(MODELS[name].init)(jax.random.key(0), X)["params"]


@functools.cache
def jitted(name, method=None):
  return jax.jit(functools.partial(MODELS[name].apply, method=method))


def logits(name, x):
  return jitted(name)({"params": params_of(name)}, jnp.asarray(x))


def test_reversal_batch():
  batch = reversal_batch([3, 5])
  np.testing.assert_array_equal(batch["x"][1, 0, :6], [*batch["x"][1, 0, :5], 0])
  source = batch["x"][:, 0]
  assert list(batch["label"][0, :4]) == [*source[0, 2::-1], EOS]
  assert list(batch["label"][1, :6]) == [*source[1, 4::-1], EOS]
  assert list(batch["x"][1, 1, :6]) == [BOS, *source[1, 4::-1]]  # start, then the target
  assert batch["weights"].sum(1).tolist() == [4, 6] and (batch["label"][0, 4:] == 0).all()


def test_reversal_lengths_vary_within_a_batch():
  builder = transduction.Reversal(config="l100", data_dir="/nonexistent")
  examples = list(builder._generate_examples(64, seed=[100, 0]))
  lengths = {int(e["length"]) for _, e in examples}
  assert min(lengths) >= 50 and max(lengths) <= 100 and len(lengths) > 10
  again = list(builder._generate_examples(64, seed=[100, 0]))
  assert all((a["source"] == b["source"]).all() for (_, a), (_, b) in zip(examples, again))


@pytest.mark.parametrize("builder, repeats", [(transduction.Reversal, 9), (transduction.Dates, 51)])
def test_validation_and_test_hold_no_source_of_an_earlier_split(builder, repeats):
  """At the shortest length independent draws repeat (reversal/l10: 9 test sources in train;
  dates/l25: 50, and 1 more in validation); the repeats are replaced, every other example stays
  the draw it was."""
  builder = builder(config=builder.BUILDER_CONFIGS[0].name, data_dir="/nonexistent")
  splits = builder._split_generators(None)
  sources = {name: [tuple(e["source"]) for _, e in examples] for name, examples in splits.items()}
  train = set(sources["train"])
  assert not train & set(sources["validation"]) and not train & set(sources["test"])
  assert not set(sources["validation"]) & set(sources["test"])
  drawn = [tuple(e["source"]) for _, e in builder._generate_examples(
      transduction.NUM_TEST, seed=[builder.length, 1])]
  assert sum(a != b for a, b in zip(drawn, sources["test"])) == repeats
  assert len(sources["test"]) == transduction.NUM_TEST


def dates_examples(L, count=300, seed=0):
  builder = transduction.Dates(config=f"l{L}", data_dir="/nonexistent")
  return [e for _, e in builder._generate_examples(count, seed=[L, seed])]


# How people write dates, as strptime reads them: each source date must parse as exactly the date
# its target says.
WRITTEN = ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y")


def parse(text):
  for fmt in WRITTEN:
    try:
      return datetime.datetime.strptime(text, fmt).date()
    except ValueError:
      pass
  raise AssertionError(f"unreadable date {text!r}")


def test_dates_targets_are_the_sources_dates_in_iso_basic_form():
  examples = dates_examples(50)
  formats_seen, lengths = set(), set()
  for e in examples:
    source, target = transduction.decode_chars(e["source"]), transduction.decode_chars(e["target"])
    lengths.add(len(source))
    assert 8 <= len(source) <= 50 and len(target) <= len(source)
    written, iso = source.split("; "), target.split(" ")
    assert [parse(w).strftime("%Y%m%d") for w in written] == iso
    for w in written:
      date = parse(w)
      month = date.strftime("%B").lower()
      matches = {f for f in transduction.DATE_FORMATS if w == f.format(
          y=date.year, m=date.month, d=date.day, month=month, mon=month[:3])}
      formats_seen |= matches if len(matches) == 1 else set()  # 12.10.2021: padded or not
  # Lengths vary, and every way of writing occurs.
  assert len(lengths) > 15 and formats_seen == set(transduction.DATE_FORMATS)
  again = dates_examples(50)
  assert all((a["source"] == b["source"]).all() for a, b in zip(examples, again))
  other_seed = dates_examples(50, seed=1)
  assert any((a["source"] != b["source"]).any() for a, b in zip(examples, other_seed))


def test_dates_batch():
  examples = dates_examples(25, count=4)
  batch = transduction.dates_batch({k: np.stack([e[k] for e in examples]) for k in
                                    ("source", "target")}, None)
  assert batch["x"].shape == (4, 2, 26)
  for b, e in enumerate(examples):
    target = transduction.decode_chars(e["target"])
    n = len(target)
    assert transduction.decode_chars(batch["x"][b, 0]) == transduction.decode_chars(e["source"])
    assert transduction.decode_chars(batch["label"][b, :n]) == target
    assert batch["label"][b, n] == EOS and batch["x"][b, 1, 0] == BOS
    assert transduction.decode_chars(batch["x"][b, 1, 1:n + 1]) == target
    assert batch["weights"][b].sum() == n + 1


def test_the_analysis_reads_the_runs_the_registry_trains():
  """experiments/analysis/seq2seq.py finds each model's runs by name: the names the sweeps of the
  experiment files give them."""
  expected = {}
  for a in seq2seq_rnn.ATTENTIONS:
    model = f"RNN, {'no attention' if a == 'none' else a}"
    expected["dates", model] = ("dates_rnn", dates_rnn.point(50, a))
    expected["reversal", model] = ("seq2seq_rnn", seq2seq_rnn.point(50, a))
  expected["dates", "Transformer"] = ("dates_transformer", dates_transformer.point(50))
  expected["reversal", "Transformer"] = ("seq2seq_transformer", {"dataset.name": "reversal/l50"})
  expected["reversal", "RNN, no attention, 96 units"] = (
      "seq2seq_rnn", seq2seq_rnn.point(50, "none", features=96))
  assert set(expected) == {(task, m) for task, (_, models) in analysis.TASKS.items()
                           for m in models}
  for (task, model), (experiment, point) in expected.items():
    assert analysis.run_dir("runs", task, model, 50, seed=1) == os.path.join(
        "runs", experiment, sweep.member_name({**point, "seed": 1}))


@pytest.mark.slow
def test_dates_through_tfds_the_pipeline_and_the_training_loop(tmp_path, monkeypatch):
  """The dates builder prepared by TFDS, read back by the pipeline, trained a few steps by the
  loop: what the unit tests above reach only through `_generate_examples`."""
  import tensorflow_datasets as tfds

  from train import data
  from train.loop import train_and_evaluate
  for split, count in (("TRAIN", 128), ("VALIDATION", 32), ("TEST", 32)):
    monkeypatch.setattr(transduction, f"NUM_{split}", count)
  tfds.builder("dates/l25", data_dir=str(tmp_path)).download_and_prepare()
  config = dates_rnn.get_config()
  config.dataset.update(name="dates/l25", data_dir=str(tmp_path))
  config.model.update(features=16, embed_dim=8, attention_dim=8)
  config.update(num_steps=4, log_every=2, eval_every=4, eval_batch_size=32)
  config.checkpoint.every = 4
  batch = data.reader(config.dataset, "test")(np.arange(3))
  for b in range(3):  # the stored records still hold a date and its ISO form
    source = transduction.decode_chars(batch["x"][b, 0]).split("; ")
    assert " ".join(parse(w).strftime("%Y%m%d") for w in source) == transduction.decode_chars(
        batch["label"][b])
  results = train_and_evaluate(config, str(tmp_path / "run"))
  assert results["num_params"] > 0 and results["final"]["step"] == 4
  assert 0 <= results["final"]["exact_match"] <= 1 and 0 < results["final"]["accuracy"] < 1


# One model in the default tier (`make test`), the others in the slow one.
SLOW = [pytest.param(name, marks=pytest.mark.slow) for name in (
    "rnn_none", "rnn_multiplicative", "rnn_gru_forward", "transformer_rotary")]


@pytest.mark.parametrize("name", ["rnn_additive", pytest.param("transformer", marks=pytest.mark.slow),
                                  *SLOW])
def test_padding_changes_nothing_and_decoding_is_causal(name):
  out = logits(name, X)
  # More padding (source and target): the same logits at the real positions, so padded source
  # positions get no attention; and a batch's longer example changes nothing for the others.
  np.testing.assert_allclose(logits(name, np.pad(X[:2], ((0, 0), (0, 0), (0, 4))))[:, :9],
                             out[:2], atol=1e-5)
  # A decoder input past position t never changes the logits up to t.
  np.testing.assert_allclose(out[2, :4], out[1, :4], atol=1e-5)


def test_cross_attention_equals_a_hand_written_reference():
  x_BTD, kv_BSD = jax.random.normal(jax.random.key(1), (2, 3, 8)), jax.random.normal(
      jax.random.key(2), (2, 5, 6))
  lengths = jnp.array([5, 2])
  mha = MultiHeadAttention(num_heads=2, features=8)
  params = jax.jit(mha.init)(jax.random.key(0), x_BTD, kv_BSD)["params"]
  out = jax.jit(functools.partial(mha.apply, lengths=lengths))({"params": params}, x_BTD, kv_BSD)
  p = jax.tree.map(np.asarray, params)
  q = np.einsum("btd,dnh->btnh", x_BTD, p["query"]["kernel"]) + p["query"]["bias"]
  k = np.einsum("bsd,dnh->bsnh", kv_BSD, p["key"]["kernel"]) + p["key"]["bias"]
  v = np.einsum("bsd,dnh->bsnh", kv_BSD, p["value"]["kernel"]) + p["value"]["bias"]
  expected = np.zeros((2, 3, 8))
  for b in range(2):
    n = int(lengths[b])
    for h in range(2):
      scores = q[b, :, h] @ k[b, :n, h].T / np.sqrt(4)
      w = np.exp(scores - scores.max(-1, keepdims=True))
      w /= w.sum(-1, keepdims=True)
      expected[b] += (w @ v[b, :n, h]) @ p["out"]["kernel"][h]
  np.testing.assert_allclose(out, expected + p["out"]["bias"], atol=1e-5)


@pytest.mark.parametrize("name", ["rnn_additive", pytest.param("transformer", marks=pytest.mark.slow),
                                  *SLOW])
def test_step_by_step_decoding_equals_the_teacher_forced_pass(name):
  x = X
  model, params = MODELS[name], params_of(name)
  start = jax.jit(decoding.start, static_argnums=(0, 3))
  memory, state = start(model, params, jnp.asarray(x[:, 0]), x.shape[-1])
  step = jax.jit(functools.partial(decoding.step, model))
  steps = []
  for t in range(x.shape[-1]):
    logp_BV, state = step(params, memory, state, jnp.asarray(x[:, 1, t]))
    steps.append(logp_BV)
  np.testing.assert_allclose(jnp.stack(steps, 1), jax.nn.log_softmax(logits(name, x)), atol=1e-5)


def rescore(name, source_BS, tokens_BT):
  """log p(tokens | source) by a teacher-forced pass, over the tokens up to the end token."""
  decoder_in = jnp.concatenate([jnp.full((len(tokens_BT), 1), BOS), tokens_BT[:, :-1]], 1)
  logp_BTV = jax.nn.log_softmax(logits(name, jnp.stack([source_BS, decoder_in], 1)))
  logp_BT = jnp.take_along_axis(logp_BTV, tokens_BT[..., None], -1)[..., 0]
  ended = jnp.cumsum(tokens_BT == EOS, 1) - (tokens_BT == EOS) > 0
  return jnp.sum(jnp.where(ended, 0.0, logp_BT), 1)


@pytest.mark.parametrize("name", ["rnn_additive", pytest.param("transformer",
                                                                marks=pytest.mark.slow)])
def test_beam_search(name):
  model, params = MODELS[name], params_of(name)
  source = jnp.asarray(X[:, 0])
  T = source.shape[1]
  greedy, greedy_score = decoding.greedy(model, params, source, T, BOS, EOS)
  one, one_score = decoding.beam_search(model, params, source, T, 1, BOS, EOS)
  np.testing.assert_array_equal(one[:, 0], greedy)
  np.testing.assert_allclose(one_score[:, 0], greedy_score, rtol=1e-5)
  np.testing.assert_allclose(rescore(name, source, greedy), greedy_score, rtol=1e-4)
  tokens, scores = decoding.beam_search(model, params, source, T, 4, BOS, EOS, alpha=0.6)
  for k in range(4):  # each beam's score is its log-probability
    np.testing.assert_allclose(rescore(name, source, tokens[:, k]), scores[:, k], rtol=1e-4)
  lengths = jnp.where((tokens == EOS).any(-1), jnp.argmax(tokens == EOS, -1) + 1, T)
  normalised = scores / decoding.length_penalty(lengths, 0.6)
  assert (jnp.diff(normalised, axis=1) <= 1e-6).all()  # best first
  assert len({tuple(map(int, t)) for t in tokens[0]}) == 4  # distinct beams
  after_end = jnp.cumsum(tokens == EOS, -1) - (tokens == EOS) > 0
  assert (jnp.where(after_end, tokens, 0) == 0).all()  # padding after the end token


@pytest.mark.parametrize("name", ["rnn_additive", pytest.param("transformer",
                                                                marks=pytest.mark.slow)])
def test_decoding_never_writes_padding_or_the_start_token(name):
  """Even where the model ranks them first (an untrained one can; here its head's bias says so):
  an output with padding inside would read as ended there."""
  params = params_of(name)
  head = params["decoder"]["head"]
  head = {**head, "bias": head["bias"].at[0].add(10.0).at[BOS].add(9.0).at[EOS].add(-10.0)}
  params = {**params, "decoder": {**params["decoder"], "head": head}}
  source = jnp.asarray(X[:, 0])
  greedy, _ = decoding.greedy(MODELS[name], params, source, source.shape[1], BOS, EOS)
  beams, _ = decoding.beam_search(MODELS[name], params, source, source.shape[1], 3, BOS, EOS)
  for out_BKT in (greedy[:, None], beams):
    written_BKT = jnp.cumsum(out_BKT == EOS, -1) == 0  # before the end token
    assert written_BKT.any()
    assert not (written_BKT & ((out_BKT == 0) | (out_BKT == BOS))).any()


def test_exact_match_counts_whole_targets():
  batch = {"label": jnp.array([[3, 4, 2, 0], [3, 4, 2, 0]]),
           "weights": jnp.array([[1, 1, 1, 0], [1, 1, 1, 0.]])}
  right = jax.nn.one_hot(batch["label"], 5)
  wrong = right.at[1, 1].set(jax.nn.one_hot(3, 5)).at[0, 3].set(jax.nn.one_hot(4, 5))
  means = losses.finalize(jax.jit(losses.transduce)(wrong, batch, jnp.ones(2)), "seq2seq")
  assert means["exact_match"] == 0.5  # row 0 is wrong on padding only
  assert means["accuracy"] == pytest.approx(5 / 6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rnn_additive", "transformer"])
def test_tiny_training_learns_reversal_and_exact_match_is_greedy_decoding(name):
  model = MODELS[name]
  tx = optax.adam(1e-2)
  rng = np.random.default_rng(0)
  make = lambda n: reversal_batch(rng.integers(2, 5, n), L=4, seed=int(rng.integers(1 << 30)))
  state = create_state(model, tx, make(1)["x"], seed=0)
  train_step = jax.jit(make_train_step(model, tx, lambda s: 1e-2, "seq2seq"))
  for _ in range(150):
    state, metrics = train_step(state, jax.tree.map(jnp.asarray, make(32)))
  test = jax.tree.map(jnp.asarray, make(200))
  out = jitted(name)({"params": state.params}, test["x"])
  means = losses.finalize(losses.transduce(out, test, jnp.ones(200)), "seq2seq")
  assert means["accuracy"] > 0.7  # chance: 0.1 among the 10 symbols
  tokens, _ = decoding.greedy(model, state.params, test["x"][:, 0], 5, BOS, EOS)
  decoded_right = ((tokens == test["label"]) | (test["weights"] == 0)).all(1)
  assert float(decoded_right.mean()) == pytest.approx(float(means["exact_match"]))
