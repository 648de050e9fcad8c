"""python -m experiments.analysis.gradient_flow RUN [RUN ...] [--out runs/gradient_flow] [--examples 500]

The lecture's vanishing- and exploding-gradient claims, measured: for each recurrent run, the norm
of the loss gradient with respect to the last layer's hidden state at every step, ||dL/dh_t|| (mean
over validation examples), at initialisation (the run's seed) and at its latest checkpoint. The
gradient includes every path through later steps (see `nets.recurrent.RNNLayer`'s `perturb_BTH`).
A run the non-finite guard stopped (diverged.json) has its initialisation measured only.

Writes OUT/gradient_flow.json (the norms) and OUT/gradient_flow.png: each curve divided by its
value at the last step (the share of the gradient that reaches t steps back: below 1 it vanishes,
above 1 it explodes), log scale, against the distance T-1-t between h_t and the sequence's last
step, where the adding problem's loss is read.
"""
import argparse
import os
import sys

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import nets  # noqa: E402
from experiments.analysis import json_blocks  # noqa: E402
from train import checkpoint, data, log, losses, workdir as run_dir  # noqa: E402
from train.config import ConfigError  # noqa: E402
from train.steps import init_variables  # noqa: E402
from train.tools import positive_int  # noqa: E402


def hidden_grad_norms(model, variables, batch, task: str):
  """||dL/dh_t|| for t = 0..T-1, averaged over the batch."""
  x = batch["x"]
  width = model.features * (2 if model.bidirectional else 1)
  perturb = jnp.zeros((x.shape[0], x.shape[1], width))

  def loss(perturb):
    out = model.apply(variables, x, train=False, perturb=perturb)
    sums = losses.TASKS[task](out, batch, jnp.ones(x.shape[0]))
    return sums["loss"] / sums["count"]

  grads_BTH = jax.jit(jax.grad(loss))(perturb)
  return jnp.linalg.norm(grads_BTH, axis=-1).mean(0)


def load(workdir: str):
  """(config, model, the trained variables, their step), or for a run the guard stopped, which
  has no trained state: (config, model, None, the message it stopped with)."""
  diverged = run_dir.read_diverged(workdir)
  if diverged is None:
    return checkpoint.load_for_inference(workdir)
  config = ml_collections.ConfigDict(checkpoint.run_config(workdir))
  return config, nets.create_model(**config.model), None, diverged["error"]


def analyse(workdir: str, examples: int) -> dict:
  config, model, trained, step = load(workdir)
  if config.model.name != "rnn":
    raise ConfigError(f"{workdir} trained {config.model.name!r}, not a recurrent net")
  reader = data.reader(config.dataset, "validation")
  batch = reader(np.arange(min(examples, len(reader))))
  task = reader.spec.task
  initial = init_variables(model, batch["x"][:1], config.seed)
  norms = {"init": hidden_grad_norms(model, initial, batch, task)}
  if trained is not None:
    norms["trained"] = hidden_grad_norms(model, trained, batch, task)
  return {"cell": config.model.cell, "dataset": config.dataset.name,
          "spectral_radius": config.model.get("spectral_radius", 1.0),  # older runs lack it
          "grad_clip_norm": config.optimizer.grad_clip_norm,
          **({"step": step} if trained is not None else {"diverged": step}),
          **{k: [float(v) for v in n] for k, n in norms.items()},
          **{f"{k}_first_over_last": float(n[0] / n[-1]) for k, n in norms.items()}}


def plot(results: dict, path: str) -> None:
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
  for ax, when in zip(axes, ("init", "trained")):
    for run, r in results.items():
      if when not in r:  # diverged
        continue
      norms = [n / r[when][-1] for n in r[when]]
      distance = list(range(len(norms) - 1, -1, -1))
      label = f"{r['cell']}{name_radius(r)} ({r['dataset']})"
      if when == "trained":
        label += f", step {r['step']}"
      ax.plot(distance, norms, label=label, linestyle="--" if r["spectral_radius"] > 1 else "-")
    ax.set(yscale="log", xlabel="T-1-t (steps from h_t to the last step)",
           ylabel="||dL/dh_t|| / ||dL/dh_T-1||",
           title="at initialisation" if when == "init" else "after training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def name_radius(r: dict) -> str:
  """', ρ = 2, clipped' for recurrent weights that start above the default spectral radius 1."""
  if r.get("spectral_radius", 1.0) == 1.0:
    return ""
  return f", ρ = {r['spectral_radius']:g}, {'clipped' if r['grad_clip_norm'] else 'not clipped'}"


def readme_blocks(docs: str = "docs") -> dict[str, str]:
  """The README's gradient-flow table, from the JSON `--out docs` wrote."""
  return json_blocks(docs, {"gradient_flow": table})


def table(flows: dict) -> str:
  lines = ["| cell | W_h's spectral radius at init | data | gradient clipping | "
           "‖dL/dh_0‖ / ‖dL/dh_T-1‖ at init | after training |",
           "|---|---|---|---|---|---|"]
  for r in flows.values():
    trained = (f"{r['trained_first_over_last']:.1e}" if "trained" in r else
               "diverged (stopped by the non-finite guard)")
    clip = f"norm {r['grad_clip_norm']:g}" if r.get("grad_clip_norm") else "none"
    lines.append(f"| {r['cell']} | {r.get('spectral_radius', 1.0):g} | {r['dataset']} | {clip} | "
                 f"{r['init_first_over_last']:.1e} | {trained} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("runs", nargs="+", help="workdirs of recurrent runs")
  parser.add_argument("--out", default="runs/gradient_flow")
  parser.add_argument("--examples", type=positive_int, default=500, help="eval examples to average over")
  args = parser.parse_args(argv)
  try:
    results = {os.path.normpath(run): analyse(run, args.examples) for run in args.runs}
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  os.makedirs(args.out, exist_ok=True)
  log.write_json(os.path.join(args.out, "gradient_flow.json"), results)
  plot(results, os.path.join(args.out, "gradient_flow.png"))
  for run, r in results.items():
    after = (f"{r['trained_first_over_last']:.2e} after {r['step']} steps" if "trained" in r else
             f"diverged: {r['diverged']}")
    print(f"{run}: ||dL/dh_0|| / ||dL/dh_T-1|| = {r['init_first_over_last']:.2e} at init, {after}")


if __name__ == "__main__":
  main()
