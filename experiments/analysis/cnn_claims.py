"""The lecture's CNN claims (14.1), measured. Plots and JSON go to --out (docs/ for the README).

  python -m experiments.analysis.cnn_claims params --out docs
      Parameters of a first hidden layer on a 100x100x3 image: a dense layer needs 100*100*3 =
      30,000 weights per node; 32 3x3 kernels of a conv layer need (3x3x3) x 32 = 864.
  python -m experiments.analysis.cnn_claims sizes --out docs
      The feature map a layer makes of a 32x32x3 image: 32 3x3 kernels at stride 1 and 2, with
      'SAME' padding (the border padded: ceil(32/s) positions a side) and 'VALID' (none:
      floor((32-3)/s)+1), then max-pooling 2x2 and 4x4 (32/w a side): stride and pooling shrink
      the map, the kernels set its depth. Also a dense layer's weights per node on a UHD frame.
  python -m experiments.analysis.cnn_claims shift --out docs RUN_PARENT [...]
      Test accuracy of trained runs (e.g. runs/reproduce/mnist1d_mlp and .../mnist1d_cnn, or a
      quoted pattern: 'runs/reproduce/mnist1d_cnn_pool/pool=max,seed=*') when every test signal is
      rolled (circularly) by k positions: translation invariance, MLP vs CNN.

  python -m experiments.analysis.cnn_claims translation --out docs RUN_PARENT
      The runs of experiments/shapes_translation.py (trained on shapes in the top half), grouped
      by model over seeds: test accuracy on the top half's test split (the control) and on the
      bottom half's (the same shapes 16 rows lower), and on the top test split rolled down by
      k = 0..16 rows.

The effect of pooling is an experiment of its own: experiments/mnist1d_cnn_pool.py (1-D) and
experiments/shapes_cnn_pool.py (2-D).
"""
import argparse
import glob
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import nets
from experiments.analysis import json_blocks
from train import log
from train.config import ConfigError
from train.tools import report

IMAGE = (100, 100, 3)


def count(module, x) -> tuple[int, int]:
  """(weights, biases) of the module's first layer, from its init on `x` (shapes only)."""
  params = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x))["params"]
  first = params[sorted(params)[0]]
  return int(np.prod(first["kernel"].shape)), int(np.prod(first["bias"].shape))


SIZES_INPUT = (32, 32, 3)
UHD = (2160, 3840, 3)


def sizes(out: str) -> dict:
  """Output shapes of conv and pooling layers on a 32x32x3 image, from flax's own layers (shapes
  only, nothing computed), and a dense layer's weights per node on a UHD frame."""
  x = jax.ShapeDtypeStruct((1, *SIZES_INPUT), jnp.float32)
  shape = lambda f: list(jax.eval_shape(f, x).shape[1:])
  conv = lambda s, p: lambda x: nn.Conv(32, (3, 3), strides=s, padding=p).init_with_output(
      jax.random.PRNGKey(0), x)[0]
  layers = {f"conv 32 kernels 3x3, stride {s}, {p}": shape(conv(s, p))
            for s in (1, 2) for p in ("SAME", "VALID")}
  for w in (2, 4):
    layers[f"max-pool {w}x{w} of the stride-1 SAME map"] = shape(
        lambda x, w=w: nn.max_pool(conv(1, "SAME")(x), (w, w), strides=(w, w)))
  uhd = jax.ShapeDtypeStruct((1, *UHD), jnp.float32)
  dense = jax.eval_shape(lambda x: nn.Dense(1).init(jax.random.PRNGKey(0), x.reshape(1, -1)), uhd)
  table = {"input": list(SIZES_INPUT), "layers": layers,
           "uhd": {"input": list(UHD),
                   "dense_weights_per_node": int(np.prod(dense["params"]["kernel"].shape))}}
  log.write_json(os.path.join(out, "cnn_sizes.json"), table)
  return table


def sizes_markdown(table: dict) -> str:
  lines = [f"| layer on a {'x'.join(map(str, table['input']))} image | feature map |", "|---|---|"]
  lines += [f"| {name} | {'x'.join(map(str, s))} |" for name, s in table["layers"].items()]
  uhd = table["uhd"]
  lines.append(f"| dense layer on a {'x'.join(map(str, uhd['input']))} UHD frame | "
               f"{uhd['dense_weights_per_node']:,} weights per node |")
  return "\n".join(lines)


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
  save(fig, os.path.join(out, "cnn_params.png"))
  return table


def test_set(dataset: ml_collections.ConfigDict, name: str = "") -> dict:
  """The whole test split (of dataset `name`, default the run's test dataset) as one batch."""
  from train import data

  if name:
    dataset = ml_collections.ConfigDict({**dataset.to_dict(), "name": name, "test_name": ""})
  reader = data.reader(dataset, "test")
  return reader(np.arange(len(reader)))


def predictor(workdir: str):
  """(the run's config, a jitted x -> predicted class) from its latest checkpoint."""
  from train.checkpoint import load_for_inference

  config, model, variables, _ = load_for_inference(workdir)
  return config, jax.jit(lambda x: model.apply(variables, x, train=False).argmax(-1))


def accuracy(predict, batch: dict, x=None) -> float:
  x = batch["x"] if x is None else x
  return float(np.mean(np.asarray(predict(x)) == batch["label"]))


def shifted_accuracy(workdir: str, shifts: list[int]) -> list[float]:
  """Test accuracy of the run's latest checkpoint with every signal rolled by k positions."""
  config, predict = predictor(workdir)
  batch = test_set(config.dataset)
  return [accuracy(predict, batch, np.roll(batch["x"], k, axis=1)) for k in shifts]


def shift(parents: list[str], shifts: list[int], out: str) -> dict:
  """{experiment: {"shifts", "accuracy": mean over seeds, "std", "runs"}} for each parent."""
  table = {}
  for parent in parents:  # a dir holding runs, or a quoted pattern: 'runs/x/pool=max,seed=*'
    groups = report.group_by_seed(report.find_runs(sorted(glob.glob(parent))))
    if len(groups) != 1:  # a curve is one config over its seeds
      raise ConfigError(f"{parent} holds runs of {len(groups)} configs; a curve is one config "
                        "over its seeds: name it, e.g. 'runs/x/pool=max,seed=*'" if groups else
                        f"no finished runs (results.json) under {parent}")
    runs = groups[0]
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
  plot_curves(ax, shifts, {f"{name} ({len(t['runs'])} seeds)": (t["accuracy"], t["std"])
                           for name, t in table.items()},
              xlabel="test signals rolled by k positions", title="MNIST-1D: translation invariance",
              ylim=(0, 1))
  save(fig, os.path.join(out, "shift_invariance.png"))
  return table


def plot_curves(ax, shifts, curves: dict, **labels) -> None:
  """Test accuracy against the shift: a line (mean) and a band (± std over seeds) a model."""
  for name, (acc, std) in curves.items():
    acc, std = np.array(acc), np.array(std)
    ax.plot(shifts, acc, marker="o", markersize=3, label=name)
    ax.fill_between(shifts, acc - std, acc + std, alpha=0.2)
  ax.set(ylabel="test accuracy", **labels)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)


def save(fig, path: str) -> None:
  import matplotlib.pyplot as plt

  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def model_label(config: dict) -> str:
  model = config["model"]
  if not model["features"]:
    return "MLP"
  if model["global_pool"] != "none":
    return f"CNN, global {model['global_pool']}-pool (fully convolutional)"
  return "CNN, dense head"


def translation(parent: str, out: str, shifts=tuple(range(17))) -> dict:
  """{model: top and bottom test accuracy (mean, std over seeds), accuracy against the rows the
  top test images are rolled down by, runs} for the runs under `parent`."""
  table = {}
  groups = report.group_by_seed(report.find_runs([parent]))
  if not groups:
    raise ConfigError(f"no finished runs (results.json) under {parent}")
  for runs in groups:
    config, rows = report.load(runs[0], "config.json"), []
    for run in runs:
      run_config, predict = predictor(run)
      top, bottom = (test_set(run_config.dataset, n) for n in ("shapes/top", "shapes/bottom"))
      rows.append([accuracy(predict, top), accuracy(predict, bottom)] + [
          accuracy(predict, top, np.roll(top["x"], k, axis=1)) for k in shifts])
    acc = np.array(rows)
    std = acc.std(0, ddof=1) if len(runs) > 1 else np.zeros(acc.shape[1])
    table[model_label(config)] = {
        "top": acc[:, 0].mean(), "top_std": std[0], "bottom": acc[:, 1].mean(),
        "bottom_std": std[1], "shifts": list(shifts), "rolled": acc[:, 2:].mean(0).tolist(),
        "rolled_std": std[2:].tolist(), "per_seed": acc[:, :2].tolist(),
        "runs": [os.path.relpath(r) for r in runs],
        "params": report.load(runs[0], "results.json")["num_params"]}
  order = sorted(table, key=lambda n: (n != "MLP", "global" in n))  # MLP, dense head, global pool
  table = {k: {f: float(v) if isinstance(v, np.floating) else v for f, v in table[k].items()}
           for k in order}
  log.write_json(os.path.join(out, "translation_2d.json"), table)
  import matplotlib.pyplot as plt

  fig, (bars, curve) = plt.subplots(1, 2, figsize=(10, 3.6))
  names = list(table)
  for i, (half, color) in enumerate((("top", "C0"), ("bottom", "C3"))):
    bars.bar(np.arange(len(names)) + 0.4 * i - 0.2, [table[n][half] for n in names], 0.4,
             yerr=[table[n][f"{half}_std"] for n in names], color=color,
             label=f"test: shapes in the {half} half")
  bars.axhline(0.2, color="gray", ls=":", label="chance (5 classes)")
  bars.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=7)
  bars.set(ylabel="test accuracy", ylim=(0, 1.3), title="trained on the top half only")
  bars.legend(fontsize=7, loc="upper center", ncol=2)
  curve.axhline(0.2, color="gray", ls=":")
  plot_curves(curve, shifts, {n: (table[n]["rolled"], table[n]["rolled_std"]) for n in names},
              xlabel="top test images rolled down by k rows", ylim=(0, 1.05),
              title=f"mean ± std over {len(table[names[0]]['runs'])} seeds")
  save(fig, os.path.join(out, "translation_2d.png"))
  return table


def translation_markdown(table: dict) -> str:
  shifts = next(iter(table.values()))["shifts"]
  cols = [i for i, k in enumerate(shifts) if k % 4 == 0 or k == 1]
  lines = ["| model | params | seeds | top half (control) | bottom half | " + " | ".join(
      f"rolled {shifts[i]}" for i in cols) + " |", "|---|---|---|---|---|" + "---|" * len(cols)]
  lines += [f"| {n} | {t['params']:,} | {len(t['runs'])} | "
            f"{100 * t['top']:.1f} ± {100 * t['top_std']:.1f} | "
            f"{100 * t['bottom']:.1f} ± {100 * t['bottom_std']:.1f} | " + " | ".join(
                f"{100 * t['rolled'][i]:.1f}" for i in cols) + " |" for n, t in table.items()]
  return "\n".join(lines)


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
                            "cnn_sizes": sizes_markdown,
                            "shift_invariance": shift_markdown,
                            "translation_2d": translation_markdown})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("claim", choices=["params", "sizes", "shift", "translation"])
  parser.add_argument("runs", nargs="*", help="shift: parent dirs of trained runs, one per curve; "
                      "translation: the parent of experiments/shapes_translation.py's runs")
  parser.add_argument("--out", default="docs")
  parser.add_argument("--max-shift", type=int, default=20)
  args = parser.parse_intermixed_args(argv)
  os.makedirs(args.out, exist_ok=True)
  if args.claim == "params":
    print(params_markdown(params(args.out)))
    return
  if args.claim == "sizes":
    print(sizes_markdown(sizes(args.out)))
    return
  if len(args.runs) != 1 and args.claim == "translation":
    parser.error("translation needs one parent dir of runs")
  if not args.runs:
    parser.error("shift needs run dirs")
  try:
    if args.claim == "translation":
      print(translation_markdown(translation(args.runs[0], args.out)))
    else:
      print(shift_markdown(shift(args.runs, list(range(args.max_shift + 1)), args.out), every=1))
  except ConfigError as e:  # no runs where the arguments say, or several configs for one curve
    parser.error(str(e))


if __name__ == "__main__":
  main()
