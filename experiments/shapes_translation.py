"""The lecture's translation-invariance claim (14.1), literally: a detector trained on shapes in
the top half of the image, tested on the same shapes moved to the bottom half (shapes/bottom is
shapes/top moved down 16 rows, image for image). Three models on 32 x 32 shapes (5 classes):
  an MLP on the pixels (`model.features=()`: no conv blocks; two hidden layers of 256, lr 1e-3:
  the best on validation of four MLPs tried on seed 0, 52-60% there);
  a CNN with a dense head (three conv 3x3 + max-pool blocks of 16, 32, 64 channels, flatten, 64);
  the same CNN fully convolutional: global max-pooling over positions, then the same head
  (`model.global_pool=max`).
Validation (model selection) is on shapes/top; the test split reported is shapes/bottom's
(`dataset.test_name`); the top half's test split, the control, is measured by
`python -m experiments.analysis.cnn_claims translation`.

Commands:
  python -m train.tools.reproduce experiments/shapes_translation.py
  python -m experiments.analysis.cnn_claims translation --out docs runs/reproduce/shapes_translation
Expected: see EXPECTED below.
"""
from experiments.registry import QUICK_SOURCE, Beats, Expected, Quick
from train.config import base_config, model_config

MLP = {"model.features": (), "model.hidden": (256, 256), "optimizer.lr": 1e-3}
FCN = {"model.global_pool": "max"}
EXPECTED = []
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.9, 0.1, overrides=FCN, source=QUICK_SOURCE)])


def get_config():
  config = base_config()
  config.dataset.name = "shapes/top"
  config.dataset.test_name = "shapes/bottom"
  config.batch_size = 64
  config.num_steps = 600
  config.eval_every = 200
  config.checkpoint.every = 200
  config.model = model_config("convnet", features=(8, 16, 32), kernel_size=3, padding="SAME",
                              pool="max", hidden=(64,), num_outputs=5)
  config.optimizer.lr = 3e-3
  config.optimizer.schedule = "cosine"
  return config
