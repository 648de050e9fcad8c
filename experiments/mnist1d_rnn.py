"""MNIST-1D as a 40-step sequence of one feature, classified from the last hidden state of a
recurrent net (the paper's row: GRU 91%). The cell is a field: simple | lstm | gru.

Commands:
  python -m train --config experiments/mnist1d_rnn.py --workdir runs/mnist1d_gru
  python -m train --config experiments/mnist1d_rnn.py --workdir runs/mnist1d_lstm --config.model.cell=lstm
  python -m train --config experiments/mnist1d_rnn.py --workdir runs/mnist1d_simple --config.model.cell=simple
  python -m train.tools.reproduce experiments/mnist1d_rnn.py   # all three, checked against EXPECTED
Expected: test accuracy at seeds 0, 1, 2: GRU 0.972, 0.979, 0.968; LSTM 0.963, 0.961, 0.954 (the
paper's GRU: 91%). The simple RNN is unreliable at this learning rate: at seed 0 it never leaves
chance (0.098), at seeds 1 and 2 it reaches 0.760 and 0.729; the gated cells beat it at every seed.
Re-trained on 2026-11-27 after the recurrent backward pass was written out (the same gradients up
to rounding; docs/registry/retrain_rnn_2026-11-27.md): GRU 0.978, 0.980, 0.970; LSTM 0.960, 0.968,
0.956; the simple RNN 0.762, 0.113, 0.778: which seed stays at chance turns on rounding.
"""
from experiments.registry import QUICK_SOURCE, Beats, Expected, Quick
from train.config import base_config, model_config

# Recorded: regression guards of ours. GRU 0.972 and LSTM 0.963 were first measured at seed 0 by
# `make rnn` and measured again, the same to the last digit, by a clean retrain into an empty runs/
# on 2026-11-26 (`python -m train --config experiments/mnist1d_rnn.py --workdir
# runs/reproduce/mnist1d_rnn --sweep model.cell=gru,lstm,simple --sweep seed=0`; 2 CPU cores
# shared with other jobs, AMD EPYC, jax 0.10.2). Confirmed by seeds 1 and 2, which did not set
# them (`--sweep seed=1,2`, same day and machine): GRU 0.979, 0.968; LSTM 0.961, 0.954. Tolerance:
# 3 standard deviations over seeds 0-2 (GRU 0.0056, LSTM 0.0047), rounded up: 0.017, 0.015.
# The simple RNN used to be an entry "at chance, 0.10 +- 0.05" (seed 0: 0.098), which a broken
# model meets too; seeds 1 and 2 showed that it is not even true (0.760, 0.729). What holds at
# every seed is that the gated cells beat it: over seeds 0-2 by 0.44 (GRU) and 0.43 (LSTM) on the
# mean, by at least 0.20 seed for seed; the relations ask for 0.2, which a model that learns
# nothing (both at 0.1) cannot meet and a simple RNN that learns at every seed (~0.75) still did.
# The re-train of 2026-11-27 (header) is closer: 0.425 and 0.410 on the mean, 0.18-0.22 at the two
# seeds where the simple RNN learned (0.762, 0.778), so a simple RNN that learns at every seed
# would now meet the LSTM's relation only narrowly or not at all.
SOURCE = "recorded: seed 0, 2026-11-26, 2-core CPU; confirmed by seeds 1, 2 ({})"
EXPECTED = [
    Expected("accuracy", 0.972, 0.017, overrides={"model.cell": "gru"},
             source=SOURCE.format("0.979, 0.968")),
    Expected("accuracy", 0.963, 0.015, overrides={"model.cell": "lstm"},
             source=SOURCE.format("0.961, 0.954")),
    *(Beats("accuracy", {"model.cell": cell}, {"model.cell": "simple"}, 0.2, seeds=(0, 1, 2),
            source=("recorded: seeds 0-2, 2026-11-26: the gated cells 0.95-0.98, the simple RNN "
                    "0.098, 0.760, 0.729")) for cell in ("gru", "lstm")),
]
# The reduced form: a loose check that it learns.
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.54, 0.1, overrides={"model.cell": "gru"},
                        source=QUICK_SOURCE)])


def get_config():
  config = base_config()
  config.model = model_config("rnn", num_outputs=10, cell="gru", features=64, head="last")
  config.optimizer.lr = 3e-3
  config.optimizer.grad_clip_norm = 1.0
  config.optimizer.schedule = "cosine"
  return config
