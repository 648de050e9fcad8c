"""The PyTorch peer of `experiments/cifar10_resnet18.py` for the speed table: the same ResNet-18
as `nets/cnn.py` (CIFAR stem: 3x3 conv, no max-pool; basic blocks with a zero-initialised last
BatchNorm scale and 1x1 projection shortcuts; global average pool), on 32x32x3 images and 10
classes, channels-last, bf16 autocast (or float32), SGD with Nesterov momentum 0.9 and weight
decay 5e-4 on the kernels only (fused on CUDA, eager), `torch.compile` of the model and loss.

  python -m experiments.peers.torch_resnet18 [--batch 512] [--dtype bfloat16|float32]
      [--width 64] [--steps 20] [--no-compile] [--out runs/bench]

Times the step as `train.tools.bench` times ours (experiments/peers/timing.py), on one random
batch kept on the device (as `train.tools.bench` does with its own pipeline's batch), and appends
a row to OUT/bench.md in `train.tools.bench`'s format. FLOPs are torch's count of one step's
convolutions and matmuls (`FlopCounterMode`).
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from experiments import cifar10_resnet18
from experiments.peers import timing
from train.tools.bench import record
from train.tools import positive_int

STAGES = (2, 2, 2, 2)


def batch_norm(features: int, zero: bool = False) -> nn.BatchNorm2d:
  norm = nn.BatchNorm2d(features, momentum=0.1)  # torch's 0.1 is flax's momentum=0.9
  if zero:
    nn.init.zeros_(norm.weight)
  return norm


class Block(nn.Module):

  def __init__(self, inputs: int, features: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(inputs, features, 3, stride, padding=1, bias=False)
    self.bn1 = batch_norm(features)
    self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=False)
    self.bn2 = batch_norm(features, zero=True)
    self.proj = None
    if stride != 1 or inputs != features:
      self.proj = nn.Sequential(nn.Conv2d(inputs, features, 1, stride, bias=False),
                                batch_norm(features))

  def forward(self, x):
    y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
    return F.relu((x if self.proj is None else self.proj(x)) + y)


class ResNet18(nn.Module):

  def __init__(self, num_outputs: int = 10, width: int = 64):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), batch_norm(width),
                              nn.ReLU())
    blocks, inputs = [], width
    for stage, num_blocks in enumerate(STAGES):
      for i in range(num_blocks):
        blocks.append(Block(inputs, width * 2**stage, 2 if stage > 0 and i == 0 else 1))
        inputs = width * 2**stage
    self.blocks = nn.Sequential(*blocks)
    self.head = nn.Linear(inputs, num_outputs)

  def forward(self, x_BCHW):
    return self.head(self.blocks(self.stem(x_BCHW)).mean(dim=(2, 3)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=positive_int, default=512)
  parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
  parser.add_argument("--width", type=positive_int, default=64)
  parser.add_argument("--steps", type=positive_int, default=20)
  parser.add_argument("--no-compile", dest="compile", action="store_false")
  parser.add_argument("--out", default="runs/bench")
  args = parser.parse_args()
  device = timing.device()
  torch.backends.cuda.matmul.allow_tf32 = True  # as jax's default float32 matmuls on a GPU
  torch.backends.cudnn.benchmark = True
  model = ResNet18(width=args.width).to(device, memory_format=torch.channels_last)
  num_params = sum(p.numel() for p in model.parameters())
  opt_cfg = cifar10_resnet18.get_config().optimizer
  decay = [p for p in model.parameters() if p.ndim > 1]  # as train.optim.decay_mask
  no_decay = [p for p in model.parameters() if p.ndim <= 1]
  opt = torch.optim.SGD([{"params": decay, "weight_decay": opt_cfg.weight_decay},
                         {"params": no_decay, "weight_decay": 0.0}], lr=opt_cfg.lr,
                        momentum=opt_cfg.momentum, nesterov=True, fused=device == "cuda")
  x = torch.randn(args.batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
  y = torch.randint(0, 10, (args.batch,), device=device)

  def forward_loss(x, y):
    with torch.autocast(device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
      return F.cross_entropy(model(x).float(), y)

  loss_fn = torch.compile(forward_loss) if args.compile else forward_loss

  def train_step():
    loss = loss_fn(x, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  with FlopCounterMode(display=False) as counter:
    forward_loss(x, y).backward()  # eager: the count of one step's convolutions and matmuls
  opt.zero_grad(set_to_none=True)
  times = timing.time_step(train_step, args.steps)
  name = "torch resnet18" + (" (torch.compile)" if args.compile else "")
  dtype = "bfloat16 autocast" if args.dtype == "bfloat16" else "float32"
  result = timing.row(name, num_params, args.batch, dtype, times, counter.get_total_flops())
  result["torch_flops_per_step"] = counter.get_total_flops()
  record(result, "torch_resnet18", "python -m experiments.peers.torch_resnet18 "
         + " ".join(sys.argv[1:]), args.out)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
