"""Generated shapes anywhere in the image (32 x 32, 5 classes), the effect of pooling in 2-D
(lecture 14.1; the 1-D version: mnist1d_cnn_pool.py): one ConvNet (three conv 3x3 layers of 8, 16,
32 channels, stride 1, 'SAME' padding, ReLU) with max-pooling, average pooling or no pooling (2x2)
after each conv, then a 64-unit hidden layer on the flattened features. Pooling halves both sides
three times (32x32 -> 4x4 positions), so the head, and the parameter count, shrink with it.

Commands:
  python -m train --config experiments/shapes_cnn_pool.py --workdir runs/shapes_pool \
      --sweep model.pool=max,avg,none --sweep seed=0,1,2
  python -m train.tools.reproduce experiments/shapes_cnn_pool.py
Expected: see EXPECTED below.
"""
from experiments.registry import QUICK_SOURCE, Expected, Quick
from train.config import base_config, model_config

EXPECTED = []
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.9, 0.1, overrides={"model.pool": "max"}, source=QUICK_SOURCE)])


def get_config():
  config = base_config()
  config.dataset.name = "shapes/anywhere"
  config.batch_size = 64
  config.num_steps = 600
  config.eval_every = 200
  config.checkpoint.every = 200
  config.model = model_config("convnet", num_outputs=5, features=(8, 16, 32), kernel_size=3,
                              padding="SAME", pool="max", hidden=(64,))
  config.optimizer.lr = 3e-3
  config.optimizer.schedule = "cosine"
  return config
