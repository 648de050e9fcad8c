"""python -m experiments.analysis.bench_rnn [--size full|small|tiny] [--steps 30]
[--dtypes float32,bfloat16] [--cells lstm,gru] [--out runs/bench_rnn]

One recurrent training step (forward, backward on a loss over all outputs, SGD update) for our
LSTM and GRU layers (the scan, also unrolled 8 and 16 steps per iteration, and for the LSTM in
float32 on a CUDA GPU the cuDNN backend) against flax's stock `nn.RNN(nn.OptimizedLSTMCell)` /
`nn.RNN(nn.GRUCell)` and, when torch is importable, PyTorch's `nn.LSTM` / `nn.GRU` (cuDNN on a
GPU), in float32 and bfloat16. "autodiff scan, unroll 8" is our layer as it was before its
backward pass was written out (`nets.recurrent.recurrence`): the same cell under `nn.scan`, with
jax's transpose of the scan, which sums the recurrent kernel's gradient inside the loop.
Reports the median step time (each step synchronised) and tokens/s; writes JSON and appends
Markdown rows to OUT/bench_rnn.md with the device, date and command.

full: batch 64, T 256, input 512, hidden 1024 (the issue's sizes, for a GPU); small: 16, 64, 128,
256 (for a CPU); tiny: 8, 16, 32, 64 (for tests).
"""
import argparse
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp

from nets import recurrent_cudnn
from nets.recurrent import CELLS, RNNLayer
from train.tools.bench import jax_step, median_ms, write_rows
from train.tools import positive_int

SIZES = {"full": dict(batch=64, length=256, inputs=512, hidden=1024),
         "small": dict(batch=16, length=64, inputs=128, hidden=256),  # a CPU-sized run
         "tiny": dict(batch=8, length=16, inputs=32, hidden=64)}


def torch_step(cell: str, size: dict, dtype: str):
  import torch

  device = "cuda" if torch.cuda.is_available() else "cpu"
  rnn_cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
  model = rnn_cls(size["inputs"], size["hidden"], batch_first=True).to(device)
  opt = torch.optim.SGD(model.parameters(), lr=1e-3)
  x = torch.randn(size["batch"], size["length"], size["inputs"], device=device)
  autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

  def run():
    opt.zero_grad(set_to_none=True)
    with autocast:
      out, _ = model(x)
      loss = out.float().square().mean()
    loss.backward()
    opt.step()
    if device == "cuda":
      torch.cuda.synchronize()

  return run


class AutodiffScan(nn.Module):
  """Our input projection and cell under `nn.scan`, differentiated by jax (the yardstick for
  `RNNLayer`'s written-out backward pass); returns the outputs."""
  features: int
  cell: str
  dtype: jnp.dtype
  unroll: int = 8

  @nn.compact
  def __call__(self, x_BTD):
    cell = CELLS[self.cell](self.features, dtype=self.dtype, name="cell")
    xw_BTG = nn.Dense(cell.num_gates * self.features, dtype=self.dtype, name="input")(x_BTD)
    scan = nn.scan(lambda cell, carry, xw_BG: cell(carry, xw_BG), variable_broadcast="params",
                   split_rngs={"params": False}, in_axes=1, out_axes=1, unroll=self.unroll)
    return scan(cell, cell.initialize_carry(x_BTD.shape[0]), xw_BTG)[1]


def flax_stock(cell: str, hidden: int, dtype) -> nn.Module:
  cell_cls = nn.OptimizedLSTMCell if cell == "lstm" else nn.GRUCell
  return nn.RNN(cell_cls(hidden, dtype=dtype))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", choices=sorted(SIZES), default="full")
  parser.add_argument("--steps", type=positive_int, default=30)
  parser.add_argument("--dtypes", default="float32,bfloat16")
  parser.add_argument("--cells", default="lstm,gru")
  parser.add_argument("--out", default="runs/bench_rnn")
  args = parser.parse_args(argv)
  size = SIZES[args.size]
  x = jax.random.normal(jax.random.PRNGKey(1), (size["batch"], size["length"], size["inputs"]))
  tokens = size["batch"] * size["length"]
  try:
    import torch  # noqa: F401
    have_torch = True
  except ImportError:
    have_torch = False

  command = "python -m experiments.analysis.bench_rnn " + " ".join(
      sys.argv[1:] if argv is None else argv)
  path = os.path.join(args.out, "bench_rnn.json")
  rows = []
  for dtype_name in args.dtypes.split(","):
    dtype = jnp.dtype(dtype_name)
    for cell in args.cells.split(","):
      ours = RNNLayer(size["hidden"], cell, dtype=dtype)
      # Each built when its turn comes; the yardstick first, then in order of interest (a run
      # cut off keeps the first rows).
      impls = {"ours (scan)": lambda: jax_step(ours, x),
               "ours (scan, unroll 8)": lambda: jax_step(ours.clone(unroll=8), x)}
      if have_torch:
        impls["torch"] = lambda: torch_step(cell, size, dtype_name)
      if not recurrent_cudnn.problem(cell, dtype, jnp.float32, perturb=False):
        impls["ours (cudnn)"] = lambda: jax_step(ours.clone(backend="cudnn"), x)
      impls["autodiff scan, unroll 8"] = lambda: jax_step(
          AutodiffScan(size["hidden"], cell, dtype), x)
      impls["ours (scan, unroll 16)"] = lambda: jax_step(ours.clone(unroll=16), x)
      impls["flax stock"] = lambda: jax_step(flax_stock(cell, size["hidden"], dtype), x)
      times = {}
      for name, build in impls.items():
        times[name] = ms = median_ms(build(), args.steps)
        rows.append({"cell": cell, "dtype": dtype_name, "impl": name, "ms": round(ms, 3),
                     "tokens_per_s": round(tokens / ms * 1e3),
                     "time_vs_ours": round(ms / times["ours (scan)"], 2)})
        print(f"{cell:4} {dtype_name:8} {name:12} {ms:9.2f} ms  {tokens / ms * 1e3:12,.0f} tok/s")
        record = write_rows(path, command, rows, size=size, torch=have_torch)

  with open(os.path.join(args.out, "bench_rnn.md"), "a") as f:
    f.write(f"\n{record['date']}, {record['device']}, `{command}`, sizes {size}\n\n")
    f.write("| cell | dtype | impl | ms/step | tokens/s | its time / ours |\n|---|---|---|---|---|---|\n")
    for r in rows:
      f.write(f"| {r['cell']} | {r['dtype']} | {r['impl']} | {r['ms']} | {r['tokens_per_s']:,} | "
              f"{r['time_vs_ours']} |\n")


if __name__ == "__main__":
  main()
