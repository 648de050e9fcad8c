"""Generated shapes anywhere in the image (32 x 32, 5 classes), the effect of pooling in 2-D
(lecture 14.1; the 1-D version: mnist1d_cnn_pool.py): one ConvNet (three conv 3x3 layers of 8, 16,
32 channels, stride 1, 'SAME' padding, ReLU) with max-pooling, average pooling or no pooling (2x2)
after each conv, then a 64-unit hidden layer on the flattened features. Pooling halves both sides
three times (32x32 -> 4x4 positions), so the head, and the parameter count, shrink with it.

Commands:
  python -m train --config experiments/shapes_cnn_pool.py --workdir runs/shapes_pool \
      --sweep model.pool=max,avg,none --sweep seed=0,1,2
  python -m train.tools.reproduce experiments/shapes_cnn_pool.py
Expected: test accuracy over seeds 0-2 (measured with the commands above, 600 steps; 2026-11-26,
2-core CPU): max-pooling 0.972 +- 0.006, average pooling 0.950 +- 0.030 (39,045 parameters), no
pooling 0.863 +- 0.023 (2,103,429 parameters: the head sees 32x32 positions instead of 4x4, and
overfits). Over seeds 3-5: 0.961, 0.957, 0.827.
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

# Recorded: regression guards of ours. Each value is the mean of seeds 0-2 (the sweep above into
# runs/reproduce/shapes_cnn_pool; 2 CPU cores shared with other jobs, jax 0.10.2), confirmed by
# seeds 3-5, which did not set them (`--sweep seed=3,4,5`, same day and machine). Tolerance: 3
# standard deviations of one run over seeds 0-5, rounded up:
#   max   0.968, 0.979, 0.970 | 0.957, 0.966, 0.959 (mean 0.961)   std 0.0080 -> 0.025
#   avg   0.953, 0.978, 0.918 | 0.962, 0.940, 0.968 (mean 0.957)   std 0.0216 -> 0.065
#   none  0.842, 0.888, 0.859 | 0.840, 0.848, 0.794 (mean 0.827)   std 0.0306 -> 0.092
SOURCE = "recorded: seeds 0-2, 2026-11-26, 2-core CPU; confirmed by seeds 3-5 ({})"
EXPECTED = [
    Expected("accuracy", 0.972, 0.025, seeds=(0, 1, 2), overrides={"model.pool": "max"},
             source=SOURCE.format(0.961)),
    Expected("accuracy", 0.950, 0.065, seeds=(0, 1, 2), overrides={"model.pool": "avg"},
             source=SOURCE.format(0.957)),
    Expected("accuracy", 0.863, 0.092, seeds=(0, 1, 2), overrides={"model.pool": "none"},
             source=SOURCE.format(0.827)),
]
# The reduced form, a loose check that it learns: one quick run (seed 0) set the value, seed 1
# confirmed it (0.924; runs/quick_confirm, same day).
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.873, 0.1, overrides={"model.pool": "max"}, source=(
                  "recorded: one quick run (seed 0), 2026-11-26; confirmed by seed 1 (0.924)"))])


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
