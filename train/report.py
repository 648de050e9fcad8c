"""python -m train.report RUN_OR_PARENT [...] [--markdown]

Prints one row per run (every results.json under the given dirs). Runs whose config.json differ only
in `seed` are folded into one row with mean +- std over their seeds.
"""
import argparse
import glob
import json
import os

import numpy as np


def find_runs(paths: list[str]) -> list[str]:
  runs = []
  for path in paths:
    runs += sorted(os.path.dirname(p) for p in glob.glob(os.path.join(path, "**", "results.json"),
                                                          recursive=True))
  return runs


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


def rows(runs: list[str]) -> list[dict]:
  table = []
  for group in group_by_seed(runs):
    results = [load(r, "results.json") for r in group]
    first = results[0]
    row = {
        "run": os.path.relpath(group[0]) if len(group) == 1 else
               os.path.relpath(os.path.commonpath(group)) + f" ({len(group)} runs)",
        "model": first["model"],
        "dataset": first["dataset"],
        "seeds": ",".join(str(r["seed"]) for r in results),
        "steps": str(first["num_steps"]),
        "params": f"{first['num_params']:,}",
    }
    for metric in first["final"]:
      if metric != "step":
        values = [r["final"][metric] for r in results]
        name = f"{first.get('eval_split', 'eval')} {metric}"
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


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("paths", nargs="+", help="run dirs, or dirs holding runs")
  parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
  args = parser.parse_args(argv)
  print(format_table(rows(find_runs(args.paths)), args.markdown))


if __name__ == "__main__":
  main()
