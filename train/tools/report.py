"""python -m train.tools.report RUN_OR_PARENT [...] [--markdown] [--out DIR]

Prints one row per run (every results.json under the given dirs, e.g. a sweep's parent): the config
fields in which the rows differ, final test metrics, parameters, wall time and examples/s. Runs
whose config.json differ only in `seed` are folded into one row with mean +- std over their seeds.
Writes DIR/report.png (the learning curves of every row overlaid, one panel per metric, from
metrics.jsonl: TensorBoard is not needed) and DIR/report.html (the table and the plot in one page).
"""
import argparse
import base64
import collections
import glob
import html
import json
import os
import re
import sys

import numpy as np

from train import log


def find_runs(paths: list[str]) -> list[str]:
  runs = []
  for path in paths:
    runs += sorted(os.path.dirname(p) for p in glob.glob(os.path.join(path, "**", "results.json"),
                                                          recursive=True))
  return runs


def readable(runs: list[str]) -> list[str]:
  """The runs whose results.json, config.json and metrics.jsonl can be read; each other one is
  named on stderr and left out, so one damaged run does not fail the report of all."""
  good = []
  for run in runs:
    try:
      load(run, "results.json"), load(run, "config.json"), log.read_metrics(run)
    except (OSError, ValueError) as e:
      print(f"warning: skipped {run}: {type(e).__name__}: {e}", file=sys.stderr)
      continue
    good.append(run)
  return good


def load(run: str, name: str) -> dict:
  with open(os.path.join(run, name)) as f:
    return json.load(f)


def group_by_seed(runs: list[str]) -> list[list[str]]:
  groups: dict[str, list[str]] = {}
  for run in runs:
    config = load(run, "config.json")
    config.pop("seed", None)
    groups.setdefault(json.dumps(config, sort_keys=True), []).append(run)
  return list(groups.values())


def mean_std(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
  values = np.asarray(values) * scale
  if len(values) == 1:
    return f"{values[0]:.{digits}f}"
  return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def config_differences(groups: list[list[str]], most: int = 5) -> list[str]:
  """Per group, the config fields (seed aside) in which the groups differ: 'cell=gru lr=0.001'."""
  from train.workdir import flat
  from train.sweep import member_name

  configs = [flat(load(g[0], "config.json")) for g in groups]
  if not configs:  # no finished run (e.g. only diverged ones)
    return []
  # Fields every row has (not another model's), other than the seed and the name columns.
  shared = set.intersection(*(set(c) for c in configs)) - {"seed", "model.name", "dataset.name"}
  keys = sorted(k for k in shared if len({json.dumps(c[k]) for c in configs}) > 1)
  more = f" +{len(keys) - most} more" if len(keys) > most else ""
  return [member_name({k: c[k] for k in keys[:most]}).replace(",", " ") + more if keys else ""
          for c in configs]


def label(group: list[str]) -> str:
  """The run's dir; for seeds of a sweep, 'parent/pool=max,seed=* (3 runs)'."""
  if len(group) == 1:
    return os.path.relpath(group[0])
  members = {re.sub(r"seed=\d+", "seed=*", os.path.relpath(r)) for r in group}
  where = members.pop() if len(members) == 1 else os.path.relpath(os.path.commonpath(group))
  return f"{where} ({len(group)} runs)"


def rows(runs: list[str]) -> list[dict]:
  table = []
  groups = group_by_seed(runs)
  for group, differences in zip(groups, config_differences(groups)):
    results = [load(r, "results.json") for r in group]
    first = results[0]
    row = {
        "run": label(group),
        **({"config": differences} if len(groups) > 1 else {}),
        "model": first["model"],
        "dataset": first["dataset"],
        "seeds": ",".join(str(r["seed"]) for r in results),
        "steps": str(first["num_steps"]),
        "params": f"{first['num_params']:,}",
    }
    for metric in first["final"]:
      if metric != "step":
        values = [r["final"][metric] for r in results]
        name = f"test {metric}"
        row[name] = (mean_std(values, 100) + " %" if metric.endswith("accuracy")
                     else mean_std(values, digits=4))
    row["wall s"] = mean_std([r["wall_time_s"] for r in results], digits=0)
    speeds = [r["examples_per_s"] for r in results if r["examples_per_s"]]
    row["examples/s"] = mean_std(speeds, digits=0) if speeds else ""
    table.append(row)
  return table


def format_table(table: list[dict], markdown: bool) -> str:
  if not table:
    return "no runs with results.json found"
  cols = list(dict.fromkeys(c for row in table for c in row))
  if markdown:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row.get(c, "") for c in cols) + " |" for row in table]
    return "\n".join(lines)
  widths = {c: max(len(c), *(len(row.get(c, "")) for row in table)) for c in cols}
  lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
  lines += ["  ".join(row.get(c, "").ljust(widths[c]) for c in cols) for row in table]
  return "\n".join(lines)


def mean_curves(group: list[str]) -> dict[tuple[str, str], tuple[list, np.ndarray, np.ndarray]]:
  """{(split, metric): (steps, mean, std over the group's runs at the steps they all logged)}."""
  per_run = []
  for run in group:
    series = collections.defaultdict(dict)
    for row in log.read_metrics(run):
      for k, v in row.items():
        if k not in ("step", "split", "time", "examples_per_s", "grad_norm", "lr"):
          series[(row["split"], k)][row["step"]] = v
    per_run.append(series)
  curves = {}
  for key in per_run[0]:
    steps = sorted(set.intersection(*(set(s.get(key, {})) for s in per_run)))
    if steps:
      values = np.array([[s[key][t] for t in steps] for s in per_run])
      curves[key] = (steps, values.mean(0), values.std(0, ddof=1) if len(values) > 1 else None)
  return curves


def short_name(group: list[str], differences: str) -> str:
  """A legend entry: what sets the row apart (its config differences, or its dir's name), and the
  number of seeds averaged."""
  where = label(group).split(" (")[0]
  name = differences or (re.sub(r",?seed=\*", "", os.path.basename(where))
                         or os.path.basename(os.path.dirname(where)))
  return name + (f" ({len(group)} seeds, mean ± std)" if len(group) > 1 else "")


def plot(runs: list[str], path: str) -> str:
  """One panel per metric (eval splits, then train loss), one line per row of the table: the mean
  over its seeds, with a band of ± one standard deviation."""
  import matplotlib.pyplot as plt  # train.log chose the Agg backend

  groups = group_by_seed(runs)
  names = [short_name(g, d) for g, d in zip(groups, config_differences(groups))]
  curves = [mean_curves(g) for g in groups]
  panels = sorted({k for c in curves for k in c if k[0] != "train"}) + [("train", "loss")]
  panels = [p for p in panels if any(p in c for c in curves)]
  fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
  for ax, (split, metric) in zip(axes[0], panels):
    for name, c in zip(names, curves):
      if (split, metric) in c:
        steps, mean, std = c[(split, metric)]
        line, = ax.plot(steps, mean, label=name, marker="o" if split != "train" else None,
                        markersize=2.5, linewidth=1.2)
        if std is not None:
          ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2,
                          linewidth=0)
    ax.set(xlabel="step", title=f"{split} {metric}")
    if metric in ("loss", "bits"):
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  handles, labels = axes[0][0].get_legend_handles_labels()
  ncol = min(len(labels), max(1, 150 // max(len(n) for n in labels)))
  fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
  fig.tight_layout(rect=(0, min(0.5, 0.05 * (1 + (len(labels) - 1) // ncol)), 1, 1))
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def write_html(table: list[dict], png: str, path: str) -> str:
  """The table and the plot in one self-contained page."""
  cols = list(dict.fromkeys(c for row in table for c in row))
  cell = lambda tag, text: f"<{tag}>{html.escape(text)}</{tag}>"
  lines = ["<!doctype html><meta charset='utf-8'><title>runs</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse;font-size:13px}"
           "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}</style>",
           "<table><tr>" + "".join(cell("th", c) for c in cols) + "</tr>"]
  lines += ["<tr>" + "".join(cell("td", row.get(c, "")) for c in cols) + "</tr>" for row in table]
  with open(png, "rb") as f:
    image = base64.b64encode(f.read()).decode()
  lines += ["</table>", f"<p><img alt='learning curves' src='data:image/png;base64,{image}'>"]
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("paths", nargs="+", help="run dirs, or dirs holding runs")
  parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
  parser.add_argument("--out", help="where report.png and report.html go (default: the first path)")
  parser.add_argument("--no-plot", action="store_true", help="print the table only")
  args = parser.parse_args(argv)
  missing = [p for p in args.paths if not glob.glob(p)]  # a path, or a quoted pattern
  if missing:
    parser.error(f"no such path: {', '.join(missing)}")
  runs = readable(find_runs(args.paths))
  table = rows(runs)
  print(format_table(table, args.markdown))
  if runs and not args.no_plot:
    out = args.out or args.paths[0]
    os.makedirs(out, exist_ok=True)
    png = plot(runs, os.path.join(out, "report.png"))
    print(f"wrote {png} and {write_html(table, png, os.path.join(out, 'report.html'))}")


if __name__ == "__main__":
  main()
