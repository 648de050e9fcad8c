"""scikit-learn's handwritten digits (8 x 8, offline), a small 2-D ConvNet: two conv 3x3 +
max-pool blocks (32, 64 channels; 8x8 -> 4x4 -> 2x2), a 128-unit hidden layer with dropout 0.3
(chosen on validation, seeds 0-2, among no dropout, dropout 0.3, 2000 steps, BatchNorm and L2
1e-4: mean validation accuracy 0.982, 0.984, 0.981, 0.983, 0.981).

Command:
  python -m train --config experiments/digits_cnn.py --workdir runs/digits_cnn
Expected: test accuracy 0.981 +- 0.011 over seeds 0-2 (0.978, 0.983, 0.981); 0.982 over seeds 3-5
(2026-11-26, 2-core CPU; 360 test images, so one image is 0.0028).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

# Recorded: a regression guard of ours. The mean of seeds 0-2 (`python -m train --config
# experiments/digits_cnn.py --workdir runs/reproduce/digits_cnn --sweep seed=0,1,2,3,4,5`;
# 2026-11-26, 2 CPU cores shared with other jobs, jax 0.10.2: 0.978, 0.983, 0.981), confirmed by
# seeds 3-5, which did not set it (0.978, 0.986, 0.983, mean 0.982). Tolerance: 3 standard
# deviations of one run over seeds 0-5 (0.0034), rounded up: 0.011.
EXPECTED = [Expected("accuracy", 0.981, 0.011, seeds=(0, 1, 2), source=(
    "recorded: seeds 0-2, 2026-11-26, 2-core CPU; confirmed by seeds 3-5 (0.982)"))]
# The reduced form, a loose check that it learns: one quick run (seed 0) set the value, seed 1
# confirmed it (0.975; runs/quick_confirm, same day).
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.972, 0.05, source=(
                  "recorded: one quick run (seed 0), 2026-11-26; confirmed by seed 1 (0.975)"))])


def get_config():
  config = base_config()
  config.dataset.name = "digits"
  config.batch_size = 64
  config.num_steps = 1000
  config.eval_every = 200
  config.checkpoint.every = 200
  config.model = model_config("convnet", features=(32, 64), kernel_size=3, pool="max",
                              hidden=(128,), dropout=0.3)
  config.optimizer.lr = 1e-3
  config.optimizer.schedule = "cosine"
  return config
