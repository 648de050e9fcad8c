"""MNIST-1D, our CNN (the default experiment): the paper's CNN widened to 64 channels with
BatchNorm, trained with AdamW, warm-up and cosine decay; same data, batch and step budget.

Command:
  python -m train --config experiments/mnist1d_cnn.py --workdir runs/mnist1d_cnn
Expected: test accuracy 0.976 +- 0.002 over seeds 0-2 (seed 0: 0.975), 0.972 over seeds 3-5; the
paper's CNN: 94%.
"""
from experiments.registry import QUICK_SOURCE, Expected, Quick
from train.config import base_config, model_config

# Recorded: a regression guard of ours, not an independent figure. The value is the mean of
# seeds 0-2 (0.975, 0.978, 0.974), first measured by `make paper` and measured again, the same to
# the last digit, by a clean retrain into an empty runs/ on 2026-11-26 (`python -m train --config
# experiments/mnist1d_cnn.py --workdir runs/reproduce/mnist1d_cnn --sweep seed=0,1,2`; 2 CPU cores
# shared with other jobs, AMD EPYC, jax 0.10.2). Confirmed by seeds 3-5, which did not set it
# (`--sweep seed=3,4,5`, same day and machine): 0.973, 0.971, 0.972, mean 0.972. Tolerance: 3
# standard deviations of one run over seeds 0-5 (0.0025), so loose for a mean of three: 0.008.
EXPECTED = [Expected("accuracy", 0.976, 0.008, seeds=(0, 1, 2), source=(
    "recorded: seeds 0-2, 2026-11-26, 2-core CPU; confirmed by seeds 3-5 (0.972)"))]
# The reduced form: a loose check that it learns.
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.93, 0.05, source=QUICK_SOURCE)])


def get_config():
  config = base_config()
  config.model = model_config("convnet", features=(64, 64, 64), kernel_size=5, strides=2,
                              padding=1, norm="batch")
  config.optimizer.name = "adamw"
  config.optimizer.weight_decay = 0.05
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_steps = 200
  return config
