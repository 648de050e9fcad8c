"""CIFAR-10 (TFDS catalog), ResNet-18 (CIFAR stem), SGD + Nesterov, cosine, crop+flip augmentation.

Needs the TFDS `cifar10` dataset: downloaded on first use where the network allows, or prepared in
config.dataset.data_dir beforehand (array_record format). Meant for a GPU.

Command:
  python -m train --config experiments/cifar10_resnet18.py --workdir runs/cifar10_resnet18
Expected: test accuracy ~0.95 after 200 epochs (the usual figure for this recipe; not run here:
this machine cannot download CIFAR-10 and has no GPU).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("accuracy", 0.95, 0.01)]
# The reduced form (not measured here: needs the TFDS download).
QUICK = Quick({"num_steps": 200, "eval_every": 100, "checkpoint.every": 100, "model.width": 16,
               "optimizer.warmup_steps": 20},
              [Expected("accuracy", 0.3, 0.2)])


def get_config():
  config = base_config()
  config.dataset.name = "cifar10"
  config.dataset.augment = True
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.num_steps = 200 * 50_000 // 128  # 200 epochs
  config.eval_every = 2000
  config.checkpoint.every = 2000
  config.model = model_config("resnet", depth=18)
  config.optimizer.name = "nesterov"
  config.optimizer.lr = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_steps = 390  # one epoch
  return config
