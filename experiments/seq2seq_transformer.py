"""The encoder-decoder Transformer on sequence reversal (train/data/transduction.py): 2 encoder
and 2 decoder blocks of width 48 (4 heads), learned positions; the same data, batch and steps as
experiments/seq2seq_rnn.py.

Commands (source length L: 10 | 25 | 50 | 100):
  python -m train --config experiments/seq2seq_transformer.py --workdir runs/seq2seq/tf_l25 \\
      --config.dataset.name=reversal/l25
  python -m train.tools.reproduce experiments/seq2seq_transformer.py   # the whole grid, checked
Expected: test token accuracy (seed 0, 2026-11-26) 1.000, 0.962, 0.947, 0.887 at L = 10, 25, 50,
100 (exact match 0.997, 0.535, 0.228, 0.003). In these 1500 steps it learns the alignment more
slowly than the RNNs with attention (0.994-1.000), but stays far above the RNN without attention
(0.664, 0.430, 0.323 at L = 25, 50, 100).
"""
from experiments import seq2seq_rnn
from experiments.registry import Expected, Quick, confirmation
from train.config import model_config

# Recorded (regression guards of ours): test token accuracy of seed 0, from `python -m train
# --config experiments/seq2seq_transformer.py --workdir runs/reproduce/seq2seq_transformer --sweep
# dataset.name=reversal/l10,reversal/l25,reversal/l50,reversal/l100 --sweep seed=0` on 2026-11-26
# (2 CPU cores shared with other jobs, jax 0.10.2). L = 25 was confirmed by seeds 1 and 2
# (`--sweep seed=1,2`, same day and machine: 0.990, 0.977; std over seeds 0-2 0.014), whose spread
# sets the tolerance (3 std); the other lengths borrow it (at least), and seed 1 confirms them
# (SEED1 below).
SEED0 = {10: 1.000, 25: 0.962, 50: 0.947, 100: 0.887}
TOLERANCE, OTHERS = 0.042, "0.990, 0.977"
# Seed 1 at the other lengths (token accuracy), which did not set them: `--sweep
# dataset.name=reversal/l10,reversal/l50,reversal/l100 --sweep seed=1` (2026-11-26, one CPU core).
SEED1 = {10: 0.999, 50: 0.966, 100: 0.901}


def entry(length: int, value: float) -> Expected:
  tolerance, confirmed = ((TOLERANCE, f"confirmed by seeds 1, 2 ({OTHERS})") if length == 25 else
                          confirmation(value, TOLERANCE, SEED1.get(length)))
  return Expected("accuracy", value, tolerance, overrides={"dataset.name": f"reversal/l{length}"},
                  source=f"recorded: seed 0, 2-core CPU, 2026-11-26; {confirmed}")


EXPECTED = [entry(length, value) for length, value in SEED0.items()]
# Test exact match of the same runs, seed 0: 0.997, 0.535, 0.228, 0.003 at L = 10, 25, 50, 100;
# seeds 1 and 2 at L = 25: 0.824, 0.736 (std over seeds 0-2 0.148 -> 3 std = 0.44). Only where that
# band stays clear of a model that learned nothing (exact match ~0): L = 10 and 25.
EXPECTED += [Expected("exact_match", value, 0.44, overrides={"dataset.name": f"reversal/l{length}"},
                      source="recorded: seed 0, 2-core CPU, 2026-11-26; " + (
                          "confirmed by seeds 1, 2 (0.824, 0.736)" if length == 25
                          else "confirmed by seed 1 (0.993)"))
             for length, value in ((10, 0.997), (25, 0.535))]
# The reduced form: 300 steps at L = 10 (`python -m train --config experiments/seq2seq_transformer.py
# --workdir runs/quick/seq2seq_transformer --sweep dataset.name=reversal/l10 --sweep seed=0,1
# --config.num_steps=300 --config.eval_every=100 --config.checkpoint.every=100`); chance is 0.25.
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.98, 0.05, overrides={"dataset.name": "reversal/l10"}, source=(
                  "recorded: one quick run (seed 0: 0.987), confirmed by seed 1 (0.977) on "
                  "2026-11-26; a loose check that it learns"))])


def get_config():
  config = seq2seq_rnn.get_config()
  config.model = model_config("transformer_seq2seq", vocab_size=13, num_outputs=13, num_layers=2,
                              num_heads=4, features=48, mlp_dim=96, max_len=256)
  return config
