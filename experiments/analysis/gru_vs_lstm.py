"""python -m experiments.analysis.gru_vs_lstm [--runs runs/reproduce] [--steps 30] [--repeats 3]
[--out runs/gru_vs_lstm]

The lecture's claim for the GRU (14.2.3): fewer gates than the LSTM, so less computation, for
similar performance. Measured side by side on the recurrent tasks' own configs (MNIST-1D as 40
steps, the adding problem and the copy task at T = 100), for each cell:

  - parameters, counted from the initialised params;
  - FLOPs per time step and sequence of the recurrent layer's forward pass (the input projection
    and one cell step), from XLA's cost analysis of one step, shown beside the analytic count
    of its matmuls, 2 G H (D + H) for G gates (LSTM 4, GRU 3), hidden size H and input size D;
  - time per training step (forward, backward, optimizer; the task's batch and length) on this
    machine, from `train.tools.bench`: the median of `--steps` synchronised steps, measured
    `--repeats` times with the two cells taking turns, and the fastest repeat kept (on a shared
    machine the other jobs only ever slow a step down);
  - the task's test metric in the registry's finished runs under RUNS (mean, std over the seeds
    found; a run whose config differs from the experiment's now is left out with a warning).

Writes OUT/gru_vs_lstm.json; `readme_blocks()` makes the table from `--out docs`.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np

from experiments import adding_problem, copy_memory, mnist1d_rnn
from experiments.analysis import json_blocks
from nets.recurrent import CELLS, RNNLayer
from train import checkpoint, log, sweep
from train.tools import bench, positive_int
from train.workdir import config_changes, run_changes

# (task, experiment module, grid point without the cell, test metric, better when)
TASKS = (("MNIST-1D (T = 40)", mnist1d_rnn, {}, "accuracy", "higher"),
         ("adding problem (T = 100)", adding_problem,
          {"dataset.name": "adding_problem/t100"}, "loss", "lower"),
         ("copy task (T = 100)", copy_memory,
          {"dataset.name": "copy_memory/t100"}, "recall_accuracy", "higher"))
COMPARED = ("lstm", "gru")


def input_size(config) -> int:
  """D, the size of what the recurrent layer reads at each step."""
  from train import data

  if config.model.vocab_size:
    return config.model.embed_dim
  shape, _ = data.spec_of(config.dataset.name).input_shape(config.dataset)
  return shape[-1]


def step_flops(cell: str, features: int, inputs: int) -> dict:
  """FLOPs of one time step of one sequence through the layer (projection and cell), by XLA and
  by the matmul count 2 G H (D + H)."""
  layer = RNNLayer(features, cell)
  x_BTD = jnp.zeros((1, 1, inputs))
  params = jax.eval_shape(layer.init, jax.random.PRNGKey(0), x_BTD)
  compiled = jax.jit(layer.apply).lower(params, x_BTD).compile()
  gates = CELLS[cell].num_gates
  return {"xla": float(bench.cost(compiled)["flops"]),
          "matmuls": 2 * gates * features * (inputs + features)}


def registry_metric(runs: str, module, point: dict, metric: str) -> tuple[list[float], list[str]]:
  """The test metric of every finished run of this grid point under RUNS (any seed), and the
  runs left out as stale: their config differs from the experiment's now (as `reproduce` says
  MISMATCH of them), so their metric is not this config's."""
  parent = os.path.join(runs, module.__name__.split(".")[-1])
  values, stale = [], []
  for path in sorted(glob.glob(os.path.join(parent, sweep.member_name({**point, "seed": "*"}),
                                            "results.json"))):
    run = os.path.dirname(path)
    seed = (checkpoint.run_config(run) or {}).get("seed")
    changes = run_changes(config_changes(run, sweep.apply(module.get_config(),
                                                          {**point, "seed": seed})))
    if seed is not None and changes:
      print(f"warning: {run} left out, a stale run: its config differs from "
            f"{module.__name__}'s in {', '.join(changes)}", file=sys.stderr)
      stale.append(os.path.basename(run))
      continue
    with open(path) as f:
      values.append(json.load(f)["final"][metric])
  return values, stale


def measure(runs: str, steps: int, repeats: int) -> dict:
  rows = []
  for task, module, point, metric, better in TASKS:
    configs = {cell: sweep.apply(module.get_config(), {**point, "model.cell": cell})
               for cell in COMPARED}
    timings = {cell: [] for cell in COMPARED}
    for _ in range(repeats):
      for cell in COMPARED:
        timings[cell].append(bench.bench(configs[cell], steps))
    for cell in COMPARED:
      at, config = {**point, "model.cell": cell}, configs[cell]
      timed = min(timings[cell], key=lambda t: t["step_ms"])
      flops = step_flops(cell, config.model.features, input_size(config))
      values, stale = registry_metric(runs, module, at, metric)
      rows.append({
          "task": task, "cell": cell, "experiment": module.__name__.split(".")[-1],
          "overrides": at, "features": config.model.features, "inputs": input_size(config),
          "params": timed["params"], "flops_per_step_xla": flops["xla"],
          "flops_per_step_matmuls": flops["matmuls"], "batch": config.batch_size,
          "step_ms": timed["step_ms"], "step_ms_repeats": [t["step_ms"] for t in timings[cell]],
          "metric": metric, "better": better,
          "values": values, "seeds": len(values), "stale_runs": stale,
          "mean": float(np.mean(values)) if values else None,
          "std": float(np.std(values, ddof=1)) if len(values) > 1 else None})
      print(f"{task:26} {cell:4} {timed['params']:7,} params  {flops['xla']:9,.0f} FLOPs/step "
            f"(matmuls {flops['matmuls']:,})  {timed['step_ms']:7.2f} ms/train step  "
            f"{metric} {values}", flush=True)
  return {"date": datetime.date.today().isoformat(), "device": jax.devices()[0].device_kind,
          "cpus": os.cpu_count(), "machine": platform.machine(), "jax": jax.__version__,
          "load_average": [round(x, 2) for x in os.getloadavg()], "runs": runs, "rows": rows}


def fmt_metric(r: dict) -> str:
  stale = f", {len(r['stale_runs'])} stale left out" if r.get("stale_runs") else ""
  if r["mean"] is None:
    return f"(no runs{stale})"
  spread = f" ± {r['std']:.2g}" if r["std"] is not None else ""
  value = f"{r['mean']:.3g}" if r["metric"] == "loss" else f"{r['mean']:.3f}"
  return f"{value}{spread} ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''}{stale})"


def table(record: dict) -> str:
  repeats = len(record["rows"][0]["step_ms_repeats"])
  lines = ["| task | cell | params | layer FLOPs per time step and sequence: XLA (matmuls "
           f"2GH(D+H)) | ms per training step (fastest of {repeats}) | test metric (mean ± std) |",
           "|---|---|---|---|---|---|"]
  for r in record["rows"]:
    lines.append(f"| {r['task']} | {r['cell']} | {r['params']:,} | "
                 f"{r['flops_per_step_xla']:,.0f} ({r['flops_per_step_matmuls']:,}) | "
                 f"{r['step_ms']:.1f} | {r['metric']} ({r['better']} is better): "
                 f"{fmt_metric(r)} |")
  return "\n".join(lines)


def ratios(record: dict) -> str:
  """GRU / LSTM for each task: parameters, FLOPs and step time."""
  by = {(r["task"], r["cell"]): r for r in record["rows"]}
  parts = []
  for task in dict.fromkeys(r["task"] for r in record["rows"]):
    g, l = by[task, "gru"], by[task, "lstm"]
    parts.append(f"{task}: params {g['params'] / l['params']:.2f}, FLOPs "
                 f"{g['flops_per_step_xla'] / l['flops_per_step_xla']:.2f}, step time "
                 f"{g['step_ms'] / l['step_ms']:.2f}")
  return "GRU / LSTM, " + "; ".join(parts) + "."


def readme_blocks(docs: str = "docs") -> dict[str, str]:
  """The GRU-vs-LSTM table, from the JSON `--out docs` wrote."""
  return json_blocks(docs, {"gru_vs_lstm": lambda record: markdown(record, docs)})


def markdown(record: dict, docs: str) -> str:
  head = (f"`python -m experiments.analysis.gru_vs_lstm --out {docs}` on {record['date']}, "
          f"{record['device']} ({record['cpus']} cores, shared; load average "
          f"{record['load_average'][0]}), jax {record['jax']}; test metrics from the runs in "
          f"`{record['runs']}/`.")
  return "\n".join([head, "", table(record), "", ratios(record)])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/reproduce",
                      help="where the registry's runs are (python -m train.tools.reproduce)")
  parser.add_argument("--steps", type=positive_int, default=30, help="timed training steps per repeat")
  parser.add_argument("--repeats", type=positive_int, default=3, help="timings per cell, fastest kept")
  parser.add_argument("--out", default="runs/gru_vs_lstm")
  args = parser.parse_args(argv)
  record = measure(args.runs, args.steps, args.repeats)
  os.makedirs(args.out, exist_ok=True)
  log.write_json(os.path.join(args.out, "gru_vs_lstm.json"), record)
  print(table(record))
  print(ratios(record))


if __name__ == "__main__":
  sys.exit(main())
