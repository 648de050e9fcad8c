"""MNIST-1D, the paper's MLP: two hidden layers of 100 ReLU units (the paper's row: 68%).

Command:
  python -m train --config experiments/mnist1d_mlp.py --workdir runs/mnist1d_mlp
Expected: test accuracy 0.678 +- 0.004 over seeds 0-2 (paper: 68%).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("accuracy", 0.68, 0.02, seeds=(0, 1, 2))]  # the paper's row
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.60, 0.07)])


def get_config():
  config = base_config()
  config.model = model_config("mlp", hidden=(100, 100))
  return config
