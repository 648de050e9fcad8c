"""MNIST-1D, logistic regression (the paper's row: 32%): an MLP with no hidden layer.

Command:
  python -m train --config experiments/mnist1d_logreg.py --workdir runs/mnist1d_logreg
Expected: test accuracy 0.319 +- 0.001 over seeds 0-2 (paper: 32%).
"""
from experiments.common import base_config, model_config


def get_config():
  config = base_config()
  config.model = model_config("mlp", hidden=())
  return config
