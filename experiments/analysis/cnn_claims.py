"""The lecture's CNN claims (14.1), measured. Plots and JSON go to --out (docs/ for the README).

  python -m experiments.analysis.cnn_claims params --out docs
      Parameters of a first hidden layer on a 100x100x3 image: a dense layer needs 100*100*3 =
      30,000 weights per node; 32 3x3 kernels of a conv layer need (3x3x3) x 32 = 864.
  python -m experiments.analysis.cnn_claims shift --out docs RUN_PARENT [...]
      Test accuracy of trained runs (e.g. runs/reproduce/mnist1d_mlp and .../mnist1d_cnn, or a
      quoted pattern: 'runs/reproduce/mnist1d_cnn_pool/pool=max,seed=*') when every test signal is
      rolled (circularly) by k positions: translation invariance, MLP vs CNN.

The effect of pooling is an experiment of its own: experiments/mnist1d_cnn_pool.py.
"""
import argparse
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np

import nets
from experiments.analysis import json_blocks
from train import log
from train.tools import report

IMAGE = (100, 100, 3)


def count(module, x) -> tuple[int, int]:
  """(weights, biases) of the module's first layer, from its init on `x` (shapes only)."""
  params = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x))["params"]
  first = params[sorted(params)[0]]
  return int(np.prod(first["kernel"].shape)), int(np.prod(first["bias"].shape))


def params(out: str) -> dict:
  x = jnp.zeros((1, *IMAGE))
  layers = {
      "dense, 1 node": nets.create_model("mlp", hidden=(1,)),
      "dense, 32 nodes": nets.create_model("mlp", hidden=(32,)),
      "conv, 32 kernels 3x3": nets.create_model("convnet", features=(32,), kernel_size=3),
  }
  table = {}
  for name, model in layers.items():
    weights, biases = count(model, x)
    table[name] = {"weights": weights, "biases": biases}
  log.write_json(os.path.join(out, "cnn_params.json"), {"input": IMAGE, "layers": table})
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 3))
  ax.barh(list(table), [t["weights"] for t in table.values()], color=["C0", "C0", "C1"])
  for i, t in enumerate(table.values()):
    ax.text(t["weights"], i, f" {t['weights']:,}", va="center")
  ax.set(xscale="log", xlabel="weights of the first layer (log scale)",
         title="first layer on a 100x100x3 input", xlim=(100, 1e8))
  fig.tight_layout()
  fig.savefig(os.path.join(out, "cnn_params.png"), dpi=100)
  plt.close(fig)
  return table


def shifted_accuracy(workdir: str, shifts: list[int]) -> list[float]:
  """Test accuracy of the run's latest checkpoint with every signal rolled by k positions."""
  from train import data
  from train.checkpoint import load_for_inference

  config, model, variables, _ = load_for_inference(workdir)
  reader = data.Reader(config.dataset, data.split(config.dataset, "test"))
  batch = reader(np.arange(len(reader)))
  apply = jax.jit(lambda x: model.apply(variables, x, train=False).argmax(-1))
  return [float(np.mean(np.asarray(apply(np.roll(batch["x"], k, axis=1))) == batch["label"]))
          for k in shifts]


def shift(parents: list[str], shifts: list[int], out: str) -> dict:
  """{experiment: {"shifts", "accuracy": mean over seeds, "std", "runs"}} for each parent."""
  table = {}
  for parent in parents:  # a dir holding runs, or a quoted pattern: 'runs/x/pool=max,seed=*'
    runs = report.find_runs(sorted(glob.glob(parent)))
    accs = np.array([shifted_accuracy(r, shifts) for r in runs])
    name = os.path.basename(os.path.normpath(parent))
    if glob.has_magic(parent):  # 'runs/x/pool=max,seed=*' -> 'x pool=max'
      name = f"{os.path.basename(os.path.dirname(parent))} {name.replace(',seed=*', '')}"
    table[name] = {
        "shifts": shifts, "accuracy": accs.mean(0).tolist(),
        "std": accs.std(0, ddof=1).tolist() if len(runs) > 1 else [0.0] * len(shifts),
        "runs": [os.path.relpath(r) for r in runs],
        "params": report.load(runs[0], "results.json")["num_params"]}
  log.write_json(os.path.join(out, "shift_invariance.json"), table)
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 3.6))
  for name, t in table.items():
    acc, std = np.array(t["accuracy"]), np.array(t["std"])
    ax.plot(shifts, acc, marker="o", markersize=3, label=f"{name} ({len(t['runs'])} seeds)")
    ax.fill_between(shifts, acc - std, acc + std, alpha=0.2)
  ax.set(xlabel="test signals rolled by k positions", ylabel="test accuracy",
         title="MNIST-1D: translation invariance", ylim=(0, 1))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "shift_invariance.png"), dpi=100)
  plt.close(fig)
  return table


def params_markdown(table: dict) -> str:
  lines = ["| first layer on 100x100x3 | weights | biases |", "|---|---|---|"]
  lines += [f"| {n} | {t['weights']:,} | {t['biases']:,} |" for n, t in table.items()]
  return "\n".join(lines)


def shift_markdown(table: dict, every: int = 2) -> str:
  shifts = next(iter(table.values()))["shifts"]
  cols = [i for i, k in enumerate(shifts) if k % every == 0]
  lines = ["| experiment | params | " + " | ".join(f"k={shifts[i]}" for i in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
  lines += [f"| {n} | {t['params']:,} | " + " | ".join(f"{100 * t['accuracy'][i]:.1f}"
                                                         for i in cols) + " |"
            for n, t in table.items()]
  return "\n".join(lines)


def readme_blocks(docs: str = "docs") -> dict[str, str]:
  """The README blocks made from the JSON files these commands wrote (absent: not run yet)."""
  return json_blocks(docs, {"cnn_params": lambda t: params_markdown(t["layers"]),
                            "shift_invariance": shift_markdown})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("claim", choices=["params", "shift"])
  parser.add_argument("runs", nargs="*", help="shift: parent dirs of trained runs, one per curve")
  parser.add_argument("--out", default="docs")
  parser.add_argument("--max-shift", type=int, default=20)
  args = parser.parse_intermixed_args(argv)
  os.makedirs(args.out, exist_ok=True)
  if args.claim == "params":
    print(params_markdown(params(args.out)))
  else:
    if not args.runs:
      parser.error("shift needs run dirs")
    print(shift_markdown(shift(args.runs, list(range(args.max_shift + 1)), args.out), every=1))


if __name__ == "__main__":
  main()
