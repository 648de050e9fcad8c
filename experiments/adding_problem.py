"""The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked values of a length-T
sequence. One file for every cell and length: pick them with overrides.

Commands (cell: simple | lstm | gru; T: 100 | 200 | 400):
  python -m train --config experiments/adding_problem.py --workdir runs/adding/lstm_t100
  python -m train --config experiments/adding_problem.py --workdir runs/adding/gru_t400 \
      --config.model.cell=gru --config.dataset.name=adding_problem/t400
  make rnn   # all nine, then the table
  python -m train.tools.reproduce experiments/adding_problem.py   # all nine, checked against EXPECTED
Expected: the trivial baseline (always predict 1) has test MSE 0.167. Seed 0: the GRU and the LSTM
reach MSE <= 0.001 at T = 100, 200 and 400; the simple RNN stays at the baseline.
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

# Seed 0. Gated cells: test MSE within 0.001 of 0; the simple RNN: at the baseline 0.167.
EXPECTED = [
    Expected("loss", *(0.0, 0.001) if cell != "simple" else (0.167, 0.01),
             overrides={"dataset.name": f"adding_problem/t{t}", "model.cell": cell})
    for t in (100, 200, 400) for cell in ("simple", "lstm", "gru")
]
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("loss", 0.0, 0.05, overrides={"dataset.name": "adding_problem/t100",
                                                       "model.cell": "gru"})])


def get_config():
  config = base_config()
  config.dataset.name = "adding_problem/t100"
  config.batch_size = 50
  config.num_steps = 3000
  config.log_every = 50
  config.eval_every = 250
  config.checkpoint.every = 500
  config.checkpoint.best_metric = "loss"
  config.checkpoint.best_mode = "min"
  config.model = model_config("rnn", num_outputs=1, cell="lstm", features=64, head="last")
  config.optimizer.lr = 3e-3
  config.optimizer.grad_clip_norm = 1.0
  return config
