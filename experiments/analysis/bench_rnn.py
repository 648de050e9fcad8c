"""python -m experiments.analysis.bench_rnn [--size full|small|tiny] [--steps 30]
[--dtypes float32,bfloat16] [--cells lstm,gru] [--out runs/bench_rnn]

One recurrent training step (forward, backward on a loss over all outputs, SGD update) for our
LSTM and GRU layers (the scan, also unrolled 8 and 16 steps per iteration, and for the LSTM in
float32 on a CUDA GPU the cuDNN backend) against flax's stock `nn.RNN(nn.OptimizedLSTMCell)` /
`nn.RNN(nn.GRUCell)` and, when torch is importable, PyTorch's `nn.LSTM` / `nn.GRU` (cuDNN on a
GPU), in float32 and bfloat16.
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
from nets.recurrent import RNNLayer
from train.tools.bench import jax_step, median_ms, write_rows

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


def flax_stock(cell: str, hidden: int, dtype) -> nn.Module:
  cell_cls = nn.OptimizedLSTMCell if cell == "lstm" else nn.GRUCell
  return nn.RNN(cell_cls(hidden, dtype=dtype))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", choices=sorted(SIZES), default="full")
  parser.add_argument("--steps", type=int, default=30)
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
      impls = {"ours (scan)": jax_step(ours, x),
               **{f"ours (scan, unroll {k})": jax_step(ours.clone(unroll=k), x) for k in (8, 16)}}
      if not recurrent_cudnn.problem(cell, dtype, jnp.float32, perturb=False):
        impls["ours (cudnn)"] = jax_step(ours.clone(backend="cudnn"), x)
      impls["flax stock"] = jax_step(flax_stock(cell, size["hidden"], dtype), x)
      if have_torch:
        impls["torch"] = torch_step(cell, size, dtype_name)
      times = {}
      for name, run in impls.items():  # "ours (scan)" first: the others' yardstick
        times[name] = ms = median_ms(run, args.steps)
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
