"""python docs/registry/resnet18_flops_cpu.py, from the repository root: XLA's FLOP count of one
ResNet-18 train step (experiments/cifar10_resnet18.py, batch 8 of 32x32x3) as lowered
(`train.tools.bench.lowered_flops`, what the bench reports) and as compiled for this CPU.

2026-11-27, jax 0.10.2, 2-core CPU (session 11):
  lowered 23.31 GFLOP, compiled 23.38 GFLOP, ratio 1.0029
"""
import os, sys
import jax, numpy as np
sys.path.insert(0, os.getcwd())
import nets
from experiments import cifar10_resnet18
from train import optim
from train.steps import create_state, make_train_step
from train.tools.bench import cost, lowered_flops

config = cifar10_resnet18.get_config()
model = nets.create_model(**config.model)
tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
x = np.zeros((8, 32, 32, 3), np.float32)
state = jax.jit(lambda: create_state(model, tx, x[:1], 0))()
step = jax.jit(make_train_step(model, tx, schedule, "classify"))
lowered = step.lower(state, {"x": x, "label": np.zeros(8, np.int32), "mask": np.ones(8, bool)})
low, compiled = lowered_flops(lowered), cost(lowered.compile()).get("flops")
print(f"lowered {low / 1e9:.2f} GFLOP, compiled {compiled / 1e9:.2f} GFLOP, ratio "
      f"{compiled / low:.4f}")
