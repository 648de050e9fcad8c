"""RNN encoder-decoders rewriting dates (train/data/transduction.py, `dates/lL`): dates written in
8 human formats ("5 apr 2021; 04/05/2021; ...") into ISO 8601's basic form ("20210405 20210405").
Without attention, with additive and with multiplicative attention; bidirectional GRU encoder, GRU
decoder. Unlike experiments/seq2seq_rnn.py, the widths differ so that every model, the Transformer
of experiments/dates_transformer.py included, has 105-110k parameters; the model without
attention gets the widest state. Same batch, steps and optimiser as the reversal experiments.

Commands (attention: none | additive | multiplicative, with its width FEATURES[attention]; source
length L: 25 | 50 | 100):
  python -m train --config experiments/dates_rnn.py --workdir runs/dates/rnn_none_l100 \\
      --config.model.attention=none --config.model.features=84 --config.dataset.name=dates/l100
  python -m train.tools.reproduce experiments/dates_rnn.py   # the whole grid, checked
Expected: test token accuracy (seed 0, 2026-11-26) at L = 25, 50, 100: without attention 0.931,
0.523, 0.469 (exact match 0.741, 0, 0); additive and multiplicative 1.000 at every L (exact match
0.985-1.000; at L = 100 0.956-1.000 over the seeds re-trained on 2026-11-27).
"""
from experiments import seq2seq_rnn
from experiments.registry import Beats, Expected, Quick, confirmed_by_seed1
from train.data.transduction import DATE_VOCAB

LENGTHS = (25, 50, 100)
ATTENTIONS = ("none", "additive", "multiplicative")
# Parameters at vocabulary 45: 109,605, 107,273, 105,615.
FEATURES = {"none": 84, "additive": 62, "multiplicative": 70}


def point(length: int, attention: str) -> dict:
  return {"dataset.name": f"dates/l{length}", "model.attention": attention,
          "model.features": FEATURES[attention]}


# Recorded (regression guards of ours): test (token accuracy, exact match) of seed 0 on 2026-11-26
# (one of 2 CPU cores each, jax 0.10.2); seed 1 (same day, the other core) confirms them: the
# tolerance is 0.02, widened to 3 std over seeds 0-1 where they differ more (`confirmation`).
# The runs, in the folders `python -m train.tools.reproduce` reads (which trains seed 0 only):
#   for a in none:84 additive:62 multiplicative:70; do python -m train --config
#     experiments/dates_rnn.py --workdir runs/reproduce/dates_rnn --sweep
#     dataset.name=dates/l25,dates/l50,dates/l100 --sweep model.attention=${a%:*} --sweep
#     model.features=${a#*:} --sweep seed=0,1; done
SEED0 = {("none", 25): (0.931, 0.741), ("none", 50): (0.523, 0.000), ("none", 100): (0.469, 0.000),
         ("additive", 25): (1.000, 1.000), ("additive", 50): (1.000, 1.000),
         ("additive", 100): (1.000, 1.000),
         ("multiplicative", 25): (1.000, 1.000), ("multiplicative", 50): (1.000, 1.000),
         ("multiplicative", 100): (1.000, 0.985)}
SEED1 = {("none", 25): (0.921, 0.722), ("none", 50): (0.580, 0.000), ("none", 100): (0.515, 0.000),
         ("additive", 25): (1.000, 1.000), ("additive", 50): (1.000, 1.000),
         ("additive", 100): (1.000, 1.000),
         ("multiplicative", 25): (1.000, 1.000), ("multiplicative", 50): (1.000, 1.000),
         ("multiplicative", 100): (0.992, 0.857)}


# More runs, where two seeds understated the spread. Exact match at L = 100 with additive
# attention: seeds 0 and 1 both scored 1.000 on 2026-11-26, which gave the entry the 0.02 floor.
# Re-trained on 2026-11-27 after the recurrent layers' backward pass was written out (the same
# gradients up to rounding), seeds 0-2 scored 0.963, 1.000 and 0.956
# (docs/registry/retrain_rnn_2026-11-27.md): a wrong character in 4 % of the test examples (each
# several dates) is within a seed's spread. The tolerance is 3 std over the five runs (0.067).
MORE = {(100, "additive", "exact_match"): (
    (0.963, 1.000, 0.956), "seeds 0-2 re-trained on 2026-11-27")}


def entry(length: int, attention: str, metric: str) -> Expected:
  i = metric != "accuracy"
  return confirmed_by_seed1(metric, SEED0[attention, length][i], SEED1[attention, length][i], 0.02,
                            point(length, attention), *MORE.get((length, attention, metric), ()))


EXPECTED = [
    *(entry(length, attention, metric) for metric in ("accuracy", "exact_match")
      for length in LENGTHS for attention in ATTENTIONS),
    # The lecture's claim, at equal parameter counts: without attention, longer inputs lose
    # information; with it, they do not.
    Beats("accuracy", point(25, "none"), point(100, "none"), 0.2, source=(
        "paper: Cho et al. 2014, Bahdanau et al. 2015 (Fig. 2): an encoder-decoder without "
        "attention degrades as the inputs grow")),
    *(Beats(metric, point(length, attention), point(length, "none"), margin, source=(
        "paper: Bahdanau et al. 2015 (Fig. 2): with attention, long inputs are translated as well "
        "as short ones")) for metric, margin in (("accuracy", 0.2), ("exact_match", 0.5))
      for length in (50, 100) for attention in ("additive", "multiplicative")),
]
# The reduced form: 300 steps at L = 25, additive attention. Seed 0 scored 0.9995, seed 1 0.9993
# (`python -m train --config experiments/dates_rnn.py --workdir runs/quick/dates_rnn --sweep
# dataset.name=dates/l25 --sweep model.attention=additive --sweep model.features=62 --sweep
# seed=0,1 --config.num_steps=300 --config.eval_every=100 --config.checkpoint.every=100`,
# 2026-11-26); guessing from the position alone scores 0.39.
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.999, 0.05, overrides=point(25, "additive"), source=(
                  "recorded: one quick run (seed 0: 0.9995), confirmed by seed 1 (0.9993) on "
                  "2026-11-26; a loose check that it learns"))])


def get_config():
  config = seq2seq_rnn.get_config()
  config.dataset.name = "dates/l50"
  config.model.update(vocab_size=DATE_VOCAB, num_outputs=DATE_VOCAB,
                      features=FEATURES["additive"])
  return config
