"""The encoder-decoder Transformer rewriting dates (train/data/transduction.py, `dates/lL`; see
experiments/dates_rnn.py): 2 encoder and 2 decoder blocks of width 44 (4 heads), 108,593
parameters, as many as the RNNs there; the same data, batch and steps.

Commands (source length L: 25 | 50 | 100):
  python -m train --config experiments/dates_transformer.py --workdir runs/dates/tf_l100 \\
      --config.dataset.name=dates/l100
  python -m train.tools.reproduce experiments/dates_transformer.py   # the whole grid, checked
Expected: test token accuracy (seed 0, 2026-11-26) 0.990, 0.993, 0.974 at L = 25, 50, 100 (exact
match 0.920, 0.881, 0.396).
"""
from experiments import seq2seq_transformer
from experiments.registry import Expected, Quick, confirmed_by_seed1
from train.data.transduction import DATE_VOCAB

LENGTHS = (25, 50, 100)


def point(length: int) -> dict:
  return {"dataset.name": f"dates/l{length}"}


# Recorded (regression guards of ours): test (token accuracy, exact match) of seed 0, confirmed by
# seed 1 as in experiments/dates_rnn.py (same day and machine), from `python -m train --config
# experiments/dates_transformer.py --workdir runs/reproduce/dates_transformer --sweep
# dataset.name=dates/l25,dates/l50,dates/l100 --sweep seed=0,1`.
SEED0 = {25: (0.990, 0.920), 50: (0.993, 0.881), 100: (0.974, 0.396)}
SEED1 = {25: (0.994, 0.952), 50: (0.988, 0.777), 100: (0.993, 0.725)}


def entry(length: int, metric: str) -> Expected:
  i = metric != "accuracy"
  return confirmed_by_seed1(metric, SEED0[length][i], SEED1[length][i], 0.02, point(length))


# Exact match only up to L = 50: at L = 100 the two seeds differ too much (0.396, 0.725) for a
# band that says anything (3 std = 0.70).
EXPECTED = [*(entry(length, "accuracy") for length in LENGTHS),
            *(entry(length, "exact_match") for length in (25, 50))]
# The reduced form: 300 steps at L = 25. Seed 0 scored 0.899, seed 1 0.914 (`python -m train
# --config experiments/dates_transformer.py --workdir runs/quick/dates_transformer --sweep
# dataset.name=dates/l25 --sweep seed=0,1 --config.num_steps=300 --config.eval_every=100
# --config.checkpoint.every=100`, 2026-11-26); guessing from the position alone scores 0.39.
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.9, 0.05, overrides=point(25), source=(
                  "recorded: one quick run (seed 0: 0.899), confirmed by seed 1 (0.914) on "
                  "2026-11-26; a loose check that it learns"))])


def get_config():
  config = seq2seq_transformer.get_config()
  config.dataset.name = "dates/l50"
  config.model.update(vocab_size=DATE_VOCAB, num_outputs=DATE_VOCAB, features=44, mlp_dim=88)
  return config
