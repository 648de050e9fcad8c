"""MNIST-1D, the effect of pooling (lecture 14.1): one ConvNet (three conv layers of 32 channels,
kernel 5, stride 1, 'SAME' padding, ReLU) with max-pooling, average pooling or no pooling (size 2)
after each conv, then a linear head on the flattened features. Pooling halves the length three
times (40 -> 5 positions), so the head, and the parameter count, shrink with it.

Commands:
  python -m train --config experiments/mnist1d_cnn_pool.py --workdir runs/pool \
      --sweep model.pool=max,avg,none --sweep seed=0,1,2
  python -m train.tools.reproduce experiments/mnist1d_cnn_pool.py
Expected: test accuracy over seeds 0-2 (measured with the commands above, 4000 steps): max-pooling
0.941 +- 0.003, average pooling 0.942 +- 0.006 (12,106 parameters), no pooling 0.934 +- 0.006
(23,306 parameters: the head sees 40 positions instead of 5).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [
    Expected("accuracy", 0.941, 0.015, seeds=(0, 1, 2), overrides={"model.pool": "max"}),
    Expected("accuracy", 0.942, 0.015, seeds=(0, 1, 2), overrides={"model.pool": "avg"}),
    Expected("accuracy", 0.934, 0.015, seeds=(0, 1, 2), overrides={"model.pool": "none"}),
]
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.81, 0.07, overrides={"model.pool": "max"})])


def get_config():
  config = base_config()
  config.num_steps = 4000
  config.model = model_config("convnet", features=(32, 32, 32), kernel_size=5, strides=1,
                              padding="SAME", pool="max")
  config.optimizer.lr = 3e-3
  config.optimizer.schedule = "cosine"
  return config
