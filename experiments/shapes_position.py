"""WHERE the shape is, not what it is: the other half of the lecture's pooling claim (14.1,
"위치가 중요한 경우"). Pooling keeps what was found and drops where: free when only a feature's
presence matters (shapes_cnn_pool.py, shapes_translation.py), a loss when its position is the
label. On `shape_position` (shapes/anywhere's images, labelled by the quadrant of the shape's
centre, 4 classes, chance 0.25; centres within a pixel of a midline left out), the ConvNet family
of those two files: three conv 3x3 layers of 8, 16, 32 channels, stride 1, ReLU, each followed by
2x2 max-pooling (but in the unpooled model), a 64-unit hidden layer; 600 steps of batch 64, Adam
3e-3 with a cosine schedule:
  global max-pooling over positions (`model.global_pool=max`), fully convolutional;
  global average pooling (`model.global_pool=avg`);
  a dense head on the flattened 4x4 map (`model.global_pool=none`);
  a dense head on the unpooled 32x32 map (`model.pool=none`, 2,103,364 parameters);
  the two global pools again with circular padding (`model.padding=CIRCULAR`) instead of zeros
    ('SAME'): the zero border shows a fully convolutional net where the edges are, and so where
    a shape is; with circular padding the net is unchanged by a roll of 16 rows or columns,
    which moves a shape to another quadrant (tests/test_images.py): the claim without that leak
    (rolls of 8, the pools' grid, leave it unchanged too; within that grid a little still shows).

Commands:
  python -m train --config experiments/shapes_position.py --workdir runs/reproduce/shapes_position \
      --sweep model.pool=max --sweep model.global_pool=max,avg,none --sweep seed=0,1,2
  python -m train --config experiments/shapes_position.py --workdir runs/reproduce/shapes_position \
      --sweep model.pool=none --sweep model.global_pool=none --sweep seed=0,1,2
  python -m train --config experiments/shapes_position.py --workdir runs/reproduce/shapes_position \
      --sweep model.padding=CIRCULAR --sweep model.global_pool=max,avg --sweep seed=0,1,2
  python -m train.tools.reproduce experiments/shapes_position.py
Expected: test accuracy over seeds 0-2 (2026-11-27, 2-core Intel Xeon CPU, jax 0.10.2): global
max-pooling 0.986, global average pooling 0.994, the pooled dense head 0.997, the unpooled one
0.994; with circular padding, global max 0.259 and average 0.309 (chance 0.25). Over seeds 3-5:
0.982, 0.996, 0.997, 0.994; 0.258, 0.285. So with zero padding global pooling does NOT lose the
position here: the net reads it off the borders (docs/images.md); without them, near chance.
"""
from experiments.registry import Beats, Expected, Quick
from train.config import base_config, model_config

GLOBAL_MAX = {"model.pool": "max", "model.global_pool": "max"}
GLOBAL_AVG = {"model.pool": "max", "model.global_pool": "avg"}
DENSE = {"model.pool": "max", "model.global_pool": "none"}
UNPOOLED = {"model.pool": "none", "model.global_pool": "none"}
CIRCULAR_MAX = {"model.padding": "CIRCULAR", "model.global_pool": "max"}
CIRCULAR_AVG = {"model.padding": "CIRCULAR", "model.global_pool": "avg"}
# Recorded: regression guards of ours. Each value is the mean of seeds 0-2 (the sweeps above into
# runs/reproduce/shapes_position; 2026-11-27, 2 CPU cores shared with other jobs, jax 0.10.2),
# confirmed by seeds 3-5, which did not set them (the same sweeps with seed=3,4,5). Tolerance: 3
# standard deviations of one run over seeds 0-5, rounded up:
#   global max      0.989, 0.996, 0.971 | 0.982, 0.981, 0.982 (mean 0.982)   std 0.0085 -> 0.026
#   global avg      0.996, 0.993, 0.993 | 0.995, 0.994, 0.998 (mean 0.996)   std 0.0020 -> 0.006
#   dense head      0.999, 0.999, 0.994 | 0.999, 0.996, 0.995 (mean 0.997)   std 0.0021 -> 0.007
#   unpooled        0.995, 0.995, 0.993 | 0.995, 0.994, 0.992 (mean 0.994)   std 0.0015 -> 0.005
#   circular, max   0.273, 0.230, 0.275 | 0.263, 0.264, 0.247 (mean 0.258)   std 0.0171 -> 0.052
#   circular, avg   0.279, 0.325, 0.321 | 0.293, 0.263, 0.301 (mean 0.285)   std 0.0241 -> 0.073
# The circular bands hold chance (0.25): what they must lose by is the relations.
SOURCE = "recorded: seeds 0-2, 2026-11-27, 2-core CPU; confirmed by seeds 3-5 ({})"
EXPECTED = [
    Expected("accuracy", 0.986, 0.026, seeds=(0, 1, 2), overrides=GLOBAL_MAX,
             source=SOURCE.format(0.982)),
    Expected("accuracy", 0.994, 0.006, seeds=(0, 1, 2), overrides=GLOBAL_AVG,
             source=SOURCE.format(0.996)),
    Expected("accuracy", 0.997, 0.007, seeds=(0, 1, 2), overrides=DENSE,
             source=SOURCE.format(0.997)),
    Expected("accuracy", 0.994, 0.005, seeds=(0, 1, 2), overrides=UNPOOLED,
             source=SOURCE.format(0.994)),
    Expected("accuracy", 0.259, 0.052, seeds=(0, 1, 2), overrides=CIRCULAR_MAX,
             source=SOURCE.format(0.258)),
    Expected("accuracy", 0.309, 0.073, seeds=(0, 1, 2), overrides=CIRCULAR_AVG,
             source=SOURCE.format(0.285)),
    *(Beats("accuracy", better, worse, 0.35, seeds=(0, 1, 2), source=(
        "analytic: a net that reads the quadrant scores ~1, one blind to it 0.25 (chance): half "
        "of that gap, rounded down"))
      for worse, pooled in ((CIRCULAR_MAX, GLOBAL_MAX), (CIRCULAR_AVG, GLOBAL_AVG))
      for better in (DENSE, pooled)),
]
# The reduced form, a loose check that it learns: one quick run (seed 0) set the value, seed 1
# confirmed it (0.998; runs/quick_confirm, same day).
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.996, 0.1, overrides=DENSE, source=(
                  "recorded: one quick run (seed 0), 2026-11-27; confirmed by seed 1 (0.998)"))])


def get_config():
  config = base_config()
  config.dataset.name = "shape_position"
  config.batch_size = 64
  config.num_steps = 600
  config.eval_every = 200
  config.checkpoint.every = 200
  config.model = model_config("convnet", num_outputs=4, features=(8, 16, 32), kernel_size=3,
                              padding="SAME", pool="max", global_pool="max", hidden=(64,))
  config.optimizer.lr = 3e-3
  config.optimizer.schedule = "cosine"
  return config
