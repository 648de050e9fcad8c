"""MNIST (TFDS catalog), a small 2-D ConvNet: two conv+max-pool blocks, a 128-unit hidden layer.

Needs the TFDS `mnist` dataset: downloaded on first use where the network allows, or prepared in
config.dataset.data_dir beforehand (array_record format).

Command:
  python -m train --config experiments/mnist_cnn.py --workdir runs/mnist_cnn
Expected: test accuracy ~0.99 (not run here: this machine cannot download MNIST).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("accuracy", 0.99, 0.005)]
# The reduced form (not measured here: needs the TFDS download).
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.9, 0.1)])


def get_config():
  config = base_config()
  config.dataset.name = "mnist"
  config.batch_size = 128
  config.num_steps = 5000
  config.model = model_config("convnet", features=(32, 64), kernel_size=3, pool="max",
                              hidden=(128,))
  config.optimizer.lr = 1e-3
  config.optimizer.schedule = "cosine"
  return config
