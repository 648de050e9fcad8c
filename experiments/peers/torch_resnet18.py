"""The PyTorch peer of `experiments/cifar10_resnet18.py` for the speed table: the same ResNet-18
as `nets/cnn.py` (CIFAR stem: 3x3 conv, no max-pool; basic blocks with a zero-initialised last
BatchNorm scale and 1x1 projection shortcuts; global average pool), on 32x32x3 images and 10
classes, channels-last, bf16 autocast (or float32), SGD with Nesterov momentum 0.9 and weight
decay 5e-4 on the kernels only (fused on CUDA), `torch.compile` of the whole step.

  python -m experiments.peers.torch_resnet18 [--batch 512] [--dtype bfloat16|float32]
      [--width 64] [--steps 20] [--no-compile] [--out runs/bench]

Times the step each one synchronised (median) and back to back (one sync at the end, mean), on
one random batch kept on the device (as `train.tools.bench` does with its own pipeline's batch), and
appends a row to OUT/bench.md in `train.tools.bench`'s format. FLOPs are torch's count of one step's
convolutions and matmuls (`FlopCounterMode`).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from experiments import cifar10_resnet18
from train.tools.bench import peak_tflops, record

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
  parser.add_argument("--batch", type=int, default=512)
  parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--no-compile", dest="compile", action="store_false")
  parser.add_argument("--out", default="runs/bench")
  args = parser.parse_args()
  device = "cuda" if torch.cuda.is_available() else "cpu"
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

  def train_step():
    with torch.autocast(device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
      loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  with FlopCounterMode(display=False) as counter:
    train_step()  # also the first step of the eager model
  flops = counter.get_total_flops()
  step = torch.compile(train_step) if args.compile else train_step
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  t = time.perf_counter()
  step(), sync()
  compile_s = time.perf_counter() - t
  step(), sync()
  times = []
  for _ in range(args.steps):
    t = time.perf_counter()
    step().item()  # .item() waits for the step, as jax.block_until_ready does
    times.append(time.perf_counter() - t)
  t = time.perf_counter()
  for _ in range(args.steps):
    loss = step()
  loss.item()
  back_to_back_ms = (time.perf_counter() - t) / args.steps * 1e3
  step_ms = statistics.median(times) * 1e3

  kind = torch.cuda.get_device_name() if device == "cuda" else "cpu"
  best_ms = min(step_ms, back_to_back_ms)
  tflops = flops / best_ms / 1e9
  peak = peak_tflops(kind)
  result = {
      "model": "torch resnet18" + (" (torch.compile)" if args.compile else ""),
      "params": num_params, "batch": args.batch, "tokens_per_step": None, "devices": 1,
      "device": kind, "dtype": "bfloat16 autocast" if args.dtype == "bfloat16" else "float32",
      "step_ms": round(step_ms, 3), "back_to_back_ms": round(back_to_back_ms, 3),
      "examples_per_s": round(args.batch / best_ms * 1e3, 1), "tokens_per_s": None,
      "compile_s": round(compile_s, 2),
      "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if device == "cuda"
                        else None,
      "torch_flops_per_step": flops, "tflops_per_s": float(f"{tflops:.3g}"),
      "peak_tflops": peak, "mfu": round(tflops / peak, 4) if peak else None,
      "torch": torch.__version__,
  }
  record(result, "torch_resnet18", "python -m experiments.peers.torch_resnet18 "
         + " ".join(sys.argv[1:]), args.out)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
