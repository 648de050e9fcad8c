"""MNIST-1D with its 40 time steps in a fixed random order (lecture 14.1: flattening a signal for a
dense net loses which inputs are neighbours; a CNN's kernels read neighbours).
`dataset.permute_positions=0` puts the steps of every signal, in every split, in one order (seed
0's); -1 leaves them in order. Two models, in the paper's setup (Adam 1e-2, batch 100, 8000 steps):
  the paper's MLP (`model.features=()` and `model.kernel_size=()`: no conv layers, so no kernels;
  two hidden layers of 100: 15,210 parameters, as mnist1d_mlp.py's);
  the paper's CNN (mnist1d_cnn_paper.py's: three conv layers of 25 channels, stride 2).
A dense layer is blind to the order of its inputs: on permuted signals it trains as it would on
the signals in order from an initial weight matrix with its rows permuted, which is as likely a
draw, so the MLP can change by seed noise only. The CNN's kernels then mix steps that were not
neighbours.

Commands:
  python -m train.tools.reproduce experiments/mnist1d_permuted.py        # seeds 0-2, checked
  python -m train --config experiments/mnist1d_permuted.py \
      --workdir runs/reproduce/mnist1d_permuted \
      --sweep dataset.permute_positions=-1,0 --sweep seed=3,4,5         # the CNN, seeds 3-5
  python -m train --config experiments/mnist1d_permuted.py \
      --workdir runs/reproduce/mnist1d_permuted \
      --sweep "model.features=()" --sweep "model.kernel_size=()" --sweep "model.hidden=(100,100)" \
      --sweep dataset.permute_positions=-1,0 --sweep seed=3,4,5         # the MLP, seeds 3-5
Expected: test accuracy over seeds 0-2 (2026-11-27, 2-core CPU), in order -> permuted: the MLP
0.678 -> 0.672 (unchanged: seed noise, 0.011 per run), the CNN 0.940 -> 0.571, below the MLP. Over
seeds 3-5: MLP 0.663 -> 0.666, CNN 0.924 -> 0.565.
"""
from experiments.registry import Beats, Expected, Quick
from train.config import base_config, model_config

MLP = {"model.features": (), "model.kernel_size": (), "model.hidden": (100, 100)}  # no conv layers
CNN = {}
ORDERED, PERMUTED = {"dataset.permute_positions": -1}, {"dataset.permute_positions": 0}
# Recorded: regression guards of ours. Each value is the mean of seeds 0-2 (the two sweeps above
# with seed=0,1,2,3,4,5, MLP first: 6 min 23 s for the 24 runs; 2026-11-27, 2 Intel Xeon CPU cores
# shared with other jobs, jax 0.10.2), confirmed by seeds 3-5, which did not set them.
# Tolerance: 3 standard deviations of one run over seeds 0-5, rounded up:
#   MLP, in order   0.684, 0.670, 0.681 | 0.663, 0.655, 0.670 (mean 0.663)   std 0.011 -> 0.033
#   MLP, permuted   0.672, 0.687, 0.656 | 0.667, 0.670, 0.662 (mean 0.666)   std 0.011 -> 0.032
#   CNN, in order   0.941, 0.944, 0.935 | 0.917, 0.922, 0.934 (mean 0.924)   std 0.011 -> 0.032
#   CNN, permuted   0.547, 0.568, 0.599 | 0.566, 0.578, 0.551 (mean 0.565)   std 0.019 -> 0.057
# (The CNN in order is mnist1d_cnn_paper.py's config, and the code before permute_positions trains
# its seed 0 to the same bits here: 0.940 over seeds 0-2 here, 0.933 in the registry's runs of
# 2026-11-26 on an AMD CPU.)
SOURCE = "recorded: seeds 0-2, 2026-11-27, 2-core CPU; confirmed by seeds 3-5 ({})"
EXPECTED = [
    Expected("accuracy", 0.678, 0.033, seeds=(0, 1, 2), overrides={**MLP, **ORDERED},
             source=SOURCE.format(0.663)),
    Expected("accuracy", 0.672, 0.032, seeds=(0, 1, 2), overrides={**MLP, **PERMUTED},
             source=SOURCE.format(0.666)),
    Expected("accuracy", 0.940, 0.032, seeds=(0, 1, 2), overrides={**CNN, **ORDERED},
             source=SOURCE.format(0.924)),
    Expected("accuracy", 0.571, 0.057, seeds=(0, 1, 2), overrides={**CNN, **PERMUTED},
             source=SOURCE.format(0.565)),
    # The claim itself: the permutation costs the CNN, and leaves it below the MLP.
    Beats("accuracy", {**CNN, **ORDERED}, {**CNN, **PERMUTED}, 0.2, seeds=(0, 1, 2), source=(
        "recorded: the CNN lost 0.369 (seeds 0-2) and 0.359 (seeds 3-5) to the permutation, "
        "2026-11-27, 2-core CPU; the margin about half of that")),
    Beats("accuracy", {**MLP, **PERMUTED}, {**CNN, **PERMUTED}, 0.05, seeds=(0, 1, 2), source=(
        "recorded: the MLP beat the permuted CNN by 0.100 (seeds 0-2) and 0.101 (seeds 3-5), "
        "2026-11-27, 2-core CPU; the margin half of that")),
]
# The reduced form, a loose check that the permuted CNN learns: one quick run (seed 0) set the
# value, seed 1 confirmed it (0.549; runs/quick_confirm, same day).
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("accuracy", 0.547, 0.07, overrides={**CNN, **PERMUTED}, source=(
                  "recorded: one quick run (seed 0), 2026-11-27; confirmed by seed 1 (0.549)"))])


def get_config():
  config = base_config()
  config.dataset.permute_positions = 0
  config.model = model_config("convnet", features=(25, 25, 25), kernel_size=(5, 3, 3),
                              strides=2, padding=1)
  return config
