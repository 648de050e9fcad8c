"""The lecture's translation-invariance claim (14.1), literally: a detector trained on shapes in
the top half of the image, tested on the same shapes moved to the bottom half (shapes/bottom is
shapes/top rolled down 16 rows, image for image). Three models on 32 x 32 shapes (5 classes):
  an MLP on the pixels (`model.features=()`: no conv blocks; two hidden layers of 256, lr 1e-3:
  the best on validation of four MLPs tried on seed 0, 52-60% there);
  a CNN with a dense head (three conv 3x3 + max-pool blocks of 8, 16, 32 channels, flatten, 64);
  the same CNN fully convolutional: global max-pooling over positions, then the same head
  (`model.global_pool=max`).
Validation (model selection) is on shapes/top; the test split reported is shapes/bottom's
(`dataset.test_name`); the top half's test split, the control, is measured by
`python -m experiments.analysis.cnn_claims translation`.

Commands:
  python -m train.tools.reproduce experiments/shapes_translation.py
  python -m experiments.analysis.cnn_claims translation --out docs runs/reproduce/shapes_translation
Expected: test accuracy on the bottom half over seeds 0-2 (2026-11-26, 2-core CPU): the fully
convolutional CNN 0.982 (its top-half control 0.986), the CNN with a dense head 0.113 and the MLP
0.195, chance being 0.2 (their controls 0.973 and 0.560). Over seeds 3-5: 0.945, 0.097, 0.209:
the global-pool CNN loses up to 9 points on some seeds (seed 4: 0.991 top, 0.898 bottom), and
only once the shapes reach the bottom edge (docs/images.md).
"""
from experiments.registry import Beats, Expected, Quick
from train.config import base_config, model_config

MLP = {"model.features": (), "model.hidden": (256, 256), "optimizer.lr": 1e-3}
CNN = {"model.global_pool": "none"}
FCN = {"model.global_pool": "max"}
# Recorded: regression guards of ours. Each value is the mean of seeds 0-2 (`python -m train
# --config experiments/shapes_translation.py --workdir runs/reproduce/shapes_translation --sweep
# model.global_pool=none,max --sweep seed=0,1,2`, and the MLP's with `--sweep "model.features=()"
# --sweep "model.hidden=(256,256)" --sweep optimizer.lr=1e-3 --sweep seed=0,1,2`; 2026-11-26, 2 CPU
# cores shared with other jobs, jax 0.10.2), confirmed by seeds 3-5, which did not set them (same
# commands, seed=3,4,5). Tolerance: 3 standard deviations of one run over seeds 0-5, rounded up:
#   global max-pool  0.981, 0.988, 0.978 | 0.980, 0.898, 0.957 (mean 0.945)   std 0.034 -> 0.11
#   dense head       0.111, 0.207, 0.022 | 0.073, 0.067, 0.152 (mean 0.097)   std 0.066 -> 0.20
#   MLP              0.206, 0.197, 0.182 | 0.216, 0.218, 0.194 (mean 0.209)   std 0.014 -> 0.05
# The dense head's and the MLP's bands hold chance (0.2): what they must lose by is the relation.
SOURCE = "recorded: seeds 0-2, 2026-11-26, 2-core CPU; confirmed by seeds 3-5 ({})"
EXPECTED = [
    Expected("accuracy", 0.982, 0.11, seeds=(0, 1, 2), overrides=FCN, source=SOURCE.format(0.945)),
    Expected("accuracy", 0.113, 0.20, seeds=(0, 1, 2), overrides=CNN, source=SOURCE.format(0.097)),
    Expected("accuracy", 0.195, 0.05, seeds=(0, 1, 2), overrides=MLP, source=SOURCE.format(0.209)),
    *(Beats("accuracy", FCN, worse, 0.5, seeds=(0, 1, 2), source=(
        "analytic: a detector blind to position scores at the bottom what it scores at the top "
        "(~0.97); one that learned positions is near chance (0.2) there: half of that gap"))
      for worse in (CNN, MLP)),
]
# The reduced form, a loose check that it learns: one quick run (seed 0) set the value, seed 1
# confirmed it (0.977; runs/quick_confirm, same day).
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.959, 0.1, overrides=FCN, source=(
                  "recorded: one quick run (seed 0), 2026-11-26; confirmed by seed 1 (0.977)"))])


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
