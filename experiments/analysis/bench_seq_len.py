"""python -m experiments.analysis.bench_seq_len [--lengths 64,128,...,4096] [--tokens 8192] [--steps 3] [--out DIR]

The lecture's parallelism claim, measured: training throughput (tokens/s) against sequence length
for the char-level Transformer LM and the LSTM LM of `experiments/chars_transformer.py` and
`experiments/chars_lstm.py` (comparable parameter counts), at a fixed number of tokens per batch.
An LSTM must take its T steps one after another; attention handles all positions at once, at a
cost that grows with T^2. Writes OUT/bench_seq_len.{json,png,md} with the device and date.
"""
import argparse
import os
import sys

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import nets  # noqa: E402
from experiments import chars_lstm, chars_transformer  # noqa: E402
from train.tools import length_table, positive_int, positive_ints  # noqa: E402
from train.tools.bench import length_sweep  # noqa: E402

EXPERIMENTS = {"transformer": chars_transformer, "lstm": chars_lstm}


def make(name: str):
  """(module, tokens) at a length and batch: the experiment's model, its table `max_len` long."""
  def model_and_tokens(length: int, batch: int):
    cfg = EXPERIMENTS[name].get_config().model
    if "max_len" in cfg:
      cfg.max_len = length
    return (nets.create_model(**cfg),
            jax.random.randint(jax.random.PRNGKey(0), (batch, length), 0, 103))
  return model_and_tokens


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lengths", type=positive_ints, default="64,128,256,512,1024,2048,4096")
  parser.add_argument("--tokens", type=positive_int, default=8192, help="tokens per batch (B = tokens / T)")
  parser.add_argument("--steps", type=positive_int, default=3, help="timed steps per point (median)")
  parser.add_argument("--out", default="runs/bench_seq_len")
  args = parser.parse_args(argv)
  command = "python -m experiments.analysis.bench_seq_len " + " ".join(
      sys.argv[1:] if argv is None else argv)
  record = length_sweep({name: make(name) for name in EXPERIMENTS}, args.lengths, args.tokens,
                        args.steps, os.path.join(args.out, "bench_seq_len.json"), command)
  rows = record["rows"]

  fig, ax = plt.subplots(figsize=(6, 4))
  for name in EXPERIMENTS:
    points = [(r["length"], r["tokens_per_s"]) for r in rows if r["model"] == name]
    params = next(r["params"] for r in rows if r["model"] == name)
    ax.plot(*zip(*points), marker="o", label=f"{name} LM ({params / 1e3:.0f}k params)")
  ax.set(xscale="log", yscale="log", xlabel="sequence length T",
         ylabel="training tokens/s", title=f"{args.tokens} tokens per batch, {record['device']}")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "bench_seq_len.png"), dpi=110)
  plt.close(fig)
  with open(os.path.join(args.out, "bench_seq_len.md"), "w") as f:
    f.write(f"{record['date']}, {record['device']}, `{command}`\n\n")
    f.write("\n".join(length_table(rows)) + "\n")


if __name__ == "__main__":
  main()
