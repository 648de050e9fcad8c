"""MNIST-1D, logistic regression (the paper's row: 32%): an MLP with no hidden layer.

Command:
  python -m train --config experiments/mnist1d_logreg.py --workdir runs/mnist1d_logreg
Expected: test accuracy 0.319 +- 0.001 over seeds 0-2 (paper: 32%).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("accuracy", 0.32, 0.01, seeds=(0, 1, 2))]  # the paper's row
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.31, 0.03)])


def get_config():
  config = base_config()
  config.model = model_config("mlp", hidden=())
  return config
