"""python -m experiments.analysis.gates RUN [RUN ...] [--out runs/gates] [--examples 500]
    [--example 0]

What the gates learn (lecture 14.2.3: the LSTM's gates decide what to forget, what to write and
keep), on the adding problem, whose answer needs the two marked values kept until the last step.
For each LSTM or GRU run, its first layer is stepped over validation sequences with the trained
weights, at initialisation and after training, recording every gate (`nets.recurrent.sow_gates`):

  keep gate: the share of a unit's old state kept at a step (the LSTM's forget gate f; the GRU's
    update gate z, h' = (1 - z) n + z h); a unit's memory, in steps, is tau = -1 / mean(log keep):
    what it holds shrinks by e every tau steps;
  write gate: the share of the new candidate written (the LSTM's input gate i; the GRU's 1 - z);
    what is written is that share times the candidate (the LSTM's g, the GRU's n).

"Marked steps" are the two marks' steps and the steps right after them: the GRU's long-memory
units open one step after the mark (see the plot).

Writes OUT/gates.json (per run: tau of every unit at init and after training; for the units with
the longest memory, and for those whose writes single out the marked steps most, both gates'
means at marked and at other steps) and OUT/gates.png (one validation example: its values and
marks, and the longest-memory units' gates over time).
"""
import argparse
import os
import sys

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.analysis import json_blocks  # noqa: E402
from nets import recurrent  # noqa: E402
from nets.layers import DTYPES  # noqa: E402
from train import checkpoint, data, log  # noqa: E402
from train.config import ConfigError  # noqa: E402
from train.steps import init_variables  # noqa: E402
from train.tools import positive_int  # noqa: E402

LONG = 20  # steps: a memory longer than this is counted in the table
SHOWN = 3  # units with the longest memory, per run


def gate_trace(cell: recurrent.RecurrentCell, layer_params: dict, x_BTD) -> dict[str, np.ndarray]:
  """Every gate of the layer's cell at every step, each (T, B, H), from zero carries."""
  xw_BTG = x_BTD @ layer_params["input"]["kernel"] + layer_params["input"]["bias"]

  def step(carry, xw_BG):
    (carry, _), recorded = cell.apply({"params": layer_params["cell"]}, carry, xw_BG,
                                      mutable=["intermediates"])
    return carry, recorded["intermediates"]["gates"][0]

  _, gates = jax.lax.scan(step, cell.initialize_carry(x_BTD.shape[0]), jnp.swapaxes(xw_BTG, 0, 1))
  return {name: np.asarray(g) for name, g in gates.items()}


def keep_and_write(cell_name: str, gates: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(keep, write, written), each (T, B, H): the shares of the old state kept and of the candidate
  written, and what is written, write * candidate (the LSTM's i * g, the GRU's (1 - z) * n)."""
  keep, write = ((gates["forget"], gates["input"]) if cell_name == "lstm" else
                 (gates["update"], 1.0 - gates["update"]))
  return keep, write, write * gates["candidate"]


def memory(keep_TBH: np.ndarray) -> np.ndarray:
  """Each unit's memory in steps, -1 / mean log(keep): its state shrinks by e every tau steps."""
  keep_TBH = np.clip(keep_TBH.astype(np.float64), 1e-300, np.nextafter(1.0, 0.0))  # 1: no decay
  return -1.0 / np.log(keep_TBH).mean(axis=(0, 1))


def analyse(workdir: str, examples: int, example: int) -> tuple[dict, dict]:
  """(the JSON's entry, the plot's traces of validation example `example`)."""
  config, model, trained, step = checkpoint.load_for_inference(workdir)
  if config.model.name != "rnn" or config.model.cell not in ("lstm", "gru"):
    raise ConfigError(f"{workdir} trained {config.model.name!r} "
                      f"{config.model.get('cell', '')!r}: the gates are an LSTM's or a GRU's")
  if not config.dataset.name.startswith("adding_problem/"):
    raise ConfigError(f"{workdir} trained on {config.dataset.name!r}; the analysis reads the "
                      "adding problem's marks")
  if config.model.get("learn_initial_carry"):
    raise ConfigError(f"{workdir} learned its initial carry; the analysis starts from zeros")
  reader = data.reader(config.dataset, "validation")
  x_BTD = jnp.asarray(reader(np.arange(min(examples, len(reader))))["x"])
  if not 0 <= example < x_BTD.shape[0]:
    raise ConfigError(f"--example must be in [0, {x_BTD.shape[0]}): one of the examples averaged")
  mark_TB = np.asarray(x_BTD[..., 1]).T > 0.5
  marked_TB = mark_TB.copy()
  marked_TB[1:] |= mark_TB[:-1]  # a mark's step or the next
  cell = recurrent.CELLS[config.model.cell](model.features, dtype=DTYPES[model.dtype])
  trace = lambda variables: keep_and_write(
      config.model.cell, gate_trace(cell, variables["params"]["forward_0"], x_BTD))
  initial_keep, _, _ = trace(init_variables(model, x_BTD[:1], config.seed))
  keep, write, written = trace(trained)
  tau_H = memory(keep)
  result = {"cell": config.model.cell, "dataset": config.dataset.name, "step": step,
            "examples": int(x_BTD.shape[0]),
            "init_memory": [float(t) for t in memory(initial_keep)],
            "trained_memory": [float(t) for t in tau_H]}
  at = lambda g, j: {"marked": float(g[..., j][marked_TB].mean()),
                     "other": float(g[..., j][~marked_TB].mean())}
  written_H = np.abs(written)
  selectivity_H = written_H[marked_TB].mean(0) / np.maximum(written_H[~marked_TB].mean(0), 1e-9)
  chosen = {"longest memory": np.argsort(tau_H)[::-1][:SHOWN],  # after training
            "writes most at marks": np.argsort(selectivity_H)[::-1][:SHOWN]}
  result["units"] = [{"chosen by": by, "unit": int(j), "memory": float(tau_H[j]),
                      "write": at(write, j), "written": at(written_H, j), "keep": at(keep, j)}
                     for by, units in chosen.items() for j in units]
  longest = chosen["longest memory"]
  traces = {"x": np.asarray(x_BTD[example]), "write": write[:, example, longest],
            "keep": keep[:, example, longest]}
  return result, traces


def plot(results: dict, traces: dict, example: int, path: str) -> None:
  """One validation example: its values and marks, then per run the longest-memory units' gates."""
  fig, axes = plt.subplots(1 + len(results), 1, figsize=(10, 2.2 * (1 + len(results))),
                           sharex=True, squeeze=False)
  axes = axes[:, 0]
  x_TD = next(iter(traces.values()))["x"]  # every run reads the same validation split
  marks = np.flatnonzero(x_TD[:, 1] > 0.5)
  axes[0].bar(np.arange(len(x_TD)), x_TD[:, 0], color="0.7", width=0.8, label="value")
  axes[0].bar(marks, x_TD[marks, 0], color="C3", width=0.8, label="marked")
  axes[0].set(ylabel="input", title=f"validation example {example}: values, and the gates of "
              "the units with the longest memory (solid: write; dotted: keep)")
  axes[0].legend(fontsize=7, loc="upper right")
  for ax, (run, r) in zip(axes[1:], results.items()):
    for i, u in enumerate(r["units"][:SHOWN]):
      color = f"C{i}"
      ax.plot(traces[run]["write"][:, i], color=color,
              label=f"unit {u['unit']} write (memory {u['memory']:.0f} steps)")
      ax.plot(traces[run]["keep"][:, i], color=color, linestyle=":", label=f"unit {u['unit']} keep")
    for m in marks:
      ax.axvline(m, color="C3", alpha=0.3)
    ax.set(ylim=(-0.02, 1.02), ylabel=f"{r['cell']} gates")
    ax.legend(fontsize=7, ncol=SHOWN, loc="center right")
  axes[-1].set_xlabel("step t")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def table(results: dict) -> str:
  lines = [f"| cell | units with memory > {LONG} steps: at init / trained | unit: chosen by | "
           "its memory | write gate: marked / other steps | what it writes, "
           "\\|write x candidate\\|: marked / other | keep gate: marked / other |",
           "|---|---|---|---|---|---|---|"]
  for r in results.values():
    count = lambda when: sum(t > LONG for t in r[f"{when}_memory"])
    for i, u in enumerate(r["units"]):
      pair = lambda g: f"{u[g]['marked']:.3f} / {u[g]['other']:.3f}"
      head = (f"| {r['cell']} | {count('init')} / {count('trained')} of {len(r['init_memory'])} "
              f"(longest at init: {max(r['init_memory']):.1f} steps)" if i == 0 else "| |")
      lines.append(f"{head} | {u['unit']}: {u['chosen by']} | {u['memory']:.1f} steps | "
                   f"{pair('write')} | {pair('written')} | {pair('keep')} |")
  return "\n".join(lines)


def readme_blocks(docs: str = "docs") -> dict[str, str]:
  """The results page's gates table, from the JSON `--out docs` wrote."""
  return json_blocks(docs, {"gates": table})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("runs", nargs="+", help="workdirs of LSTM or GRU runs on the adding problem")
  parser.add_argument("--out", default="runs/gates")
  parser.add_argument("--examples", type=positive_int, default=500,
                      help="validation examples to average over")
  parser.add_argument("--example", type=int, default=0, help="the validation example plotted")
  args = parser.parse_args(argv)
  try:
    analysed = {os.path.normpath(run): analyse(run, args.examples, args.example)
                for run in args.runs}
    datasets = sorted({result["dataset"] for result, _ in analysed.values()})
    if len(datasets) > 1:  # the plot shows one example's values and marks for every run
      raise ConfigError(f"the runs read different datasets ({', '.join(datasets)}): give runs of "
                        "one length")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  results = {run: result for run, (result, _) in analysed.items()}
  os.makedirs(args.out, exist_ok=True)
  log.write_json(os.path.join(args.out, "gates.json"), results)
  plot(results, {run: traces for run, (_, traces) in analysed.items()}, args.example,
       os.path.join(args.out, "gates.png"))
  print(table(results))


if __name__ == "__main__":
  main()
