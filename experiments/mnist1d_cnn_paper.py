"""MNIST-1D, the paper's CNN and setup: three conv layers (25 channels, kernels 5, 3, 3, stride 2,
padding 1, ReLU: 40 -> 19 -> 10 -> 5 positions) and a linear head on 5 x 25 features, as in the
`mnist1d` repo's ConvBase; Adam lr 1e-2, batch 100, 8000 steps (the paper's row: 94%).

Command:
  python -m train --config experiments/mnist1d_cnn_paper.py --workdir runs/mnist1d_cnn_paper
Expected: test accuracy 0.933 +- 0.010 over seeds 0-2 (paper: 94%).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("accuracy", 0.94, 0.015, seeds=(0, 1, 2))]  # the paper's row
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.85, 0.07)])


def get_config():
  config = base_config()
  config.model = model_config("convnet", features=(25, 25, 25), kernel_size=(5, 3, 3),
                              strides=2, padding=1)
  return config
