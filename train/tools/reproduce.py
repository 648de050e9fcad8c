"""python -m train.tools.reproduce experiments/X.py [...] | --all  [--quick] [--runs DIR] [--readme]

The results registry: each experiment file declares `EXPECTED` (a list of `Expected`: metric,
value, tolerance, seeds, the config overrides of a grid point and the value's source; and of
`Beats` relations between grid points, and of `Diverges`: runs expected to be stopped by the
non-finite guard or to end blown up) and `QUICK`, its reduced form (experiments/registry.py).
This command trains every entry's runs (a sweep over its seeds, in
DIR/<experiment>/<field=value,...,seed=S>; finished runs are skipped), prints the measured
mean +- std against the expected value, and exits with status 1 when one does not match. The last
line counts the independent entries (a paper's table, an analytic baseline) apart from the
recorded ones (our own earlier runs: regression guards) and the relations.

  python -m train.tools.reproduce experiments/mnist1d_cnn.py   # the full form: runs/reproduce/...
  python -m train.tools.reproduce --all --quick                # every reduced form: runs/quick/...
  python -m train.tools.reproduce --readme                     # README.md's and docs/*.md's blocks

An entry whose dataset is not prepared (a TFDS catalog dataset on an offline machine) is reported
as skipped, not as a mismatch; an experiment without EXPECTED (a benchmark) as no target.
"""
import argparse
import datetime
import functools
import glob
import importlib
import importlib.util
import os
import pkgutil
import re
import sys

import numpy as np

from experiments.registry import INDEPENDENT, Beats, Diverges, Expected
from train import sweep
from train.tools import report
from train.config import ConfigError, one_line
from train.faults import TrainingDiverged

EXPERIMENTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "experiments")
EXPERIMENTS_DIR = os.path.normpath(EXPERIMENTS_DIR)


def all_experiments() -> list[str]:
  return sorted(p for p in glob.glob(os.path.join(EXPERIMENTS_DIR, "*.py"))
                if not os.path.basename(p).startswith(("_", "registry")))


def experiment_name(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def load_experiment(path: str):
  """The experiment module: experiments/X.py by import, any other file by path."""
  if not os.path.exists(path):
    raise ConfigError(f"no experiment file {path!r}")
  if os.path.dirname(os.path.abspath(path)) == EXPERIMENTS_DIR:
    return importlib.import_module(f"experiments.{experiment_name(path)}")
  spec = importlib.util.spec_from_file_location(experiment_name(path), path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def registry(module, quick: bool) -> tuple[dict, list[Expected]]:
  """(overrides for every run, the entries): EXPECTED, or QUICK's reduced form."""
  if quick:
    q = getattr(module, "QUICK", None)
    return (q.overrides, q.expected) if q else ({}, [])
  return {}, list(getattr(module, "EXPECTED", None) or [])


def entry_members(entry: Expected, overrides: dict | None = None) -> list[dict]:
  overrides = entry.overrides if overrides is None else overrides
  return [{**overrides, "seed": seed} for seed in entry.seeds]


def entry_points(entry: Expected | Beats | Diverges) -> list[dict]:
  """The grid points (config overrides) whose runs an entry reads: one, or a relation's two."""
  return [entry.better, entry.worse] if isinstance(entry, Beats) else [entry.overrides]


def missing_dataset(cfg) -> str | None:
  """Why a catalog dataset cannot be read here, or None. Our own builders generate offline."""
  import tensorflow_datasets as tfds

  from train import data

  if data.is_generated(cfg.name):
    return None
  try:
    builder = tfds.builder(cfg.name, data_dir=cfg.data_dir or None)
  except Exception as e:  # noqa: BLE001  unknown names etc.: the run's own checks say more
    return f"dataset {cfg.name!r} unavailable: {str(e).splitlines()[0]}"
  if builder.is_prepared():
    return None
  return (f"dataset {cfg.name!r} not prepared in {data.data_dir(cfg)} "
          f"(tfds build {cfg.name.split('/')[0]} --file_format=array_record, or --download)")


def measure(parent: str, entry: Expected | Beats | Diverges, config, point: dict | None = None
            ) -> tuple[list[float], list[str], bool]:
  """The entry's final test metric in each of its finished runs (of grid point `point`, default
  its only one; for `Diverges`, inf for a run the guard stopped), the config fields in which
  these runs differ from the registry's config, or their dataset's version from the builder's
  (a stale run: the experiment or its data changed since), and
  whether a run of an entry that expects a result was stopped by the guard instead. Where a run
  read its data (`train.workdir.WHERE_DATA_IS`) makes no run stale."""
  from train import data
  from train.workdir import config_changes, read_diverged, run_changes

  values, stale, diverged = [], set(), False
  version = data.dataset_version(config.dataset.name)
  for member in entry_members(entry, point):
    path = os.path.join(parent, sweep.member_name(member))
    if os.path.exists(os.path.join(path, "results.json")):
      results = report.load(path, "results.json")
      values.append(results["final"][entry.metric])
      if results.get("dataset_version", version) != version:  # (not recorded before 2026-11-27)
        stale.add(f"the dataset's version: {results['dataset_version']}, now {version}")
    elif read_diverged(path) is None:
      continue
    elif isinstance(entry, Diverges):
      values.append(float("inf"))  # stopped by the non-finite guard
    else:
      diverged = True
      continue
    stale.update(run_changes(config_changes(path, sweep.apply(config, member))))
  return values, sorted(stale), diverged


def fmt(x: float) -> str:
  return f"{x:.3f}" if abs(x) >= 0.001 or x == 0 else f"{x:.1e}"


def point_name(overrides: dict) -> str:
  return sweep.member_name(overrides).replace("default", "-")


def outcome(name: str, entry: Expected, values: list[float], status: str = "") -> dict:
  """One row: what was expected, what was measured, and whether it matches."""
  mean = float(np.mean(values)) if values else None
  if not status:
    if len(values) < len(entry.seeds):
      status = f"not run ({len(values)} of {len(entry.seeds)} runs)"
    else:
      status = "ok" if abs(mean - entry.value) <= entry.tolerance else "MISMATCH"
  measured = ""
  if values:
    measured = fmt(mean) + (f" ± {fmt(float(np.std(values, ddof=1)))}" if len(values) > 1 else "")
  return {"experiment": name, "runs": point_name(entry.overrides),
          "metric": entry.metric, "expected": f"{fmt(entry.value)} ± {fmt(entry.tolerance)}",
          "measured": measured, "seeds": ",".join(map(str, entry.seeds)), "source": entry.kind,
          "status": status}


def divergence_outcome(name: str, entry: Diverges, values: list[float], status: str = "") -> dict:
  """One row of a `Diverges` entry: every seed's run must have diverged (stopped by the guard:
  inf in `values`, or ended above `entry.above`)."""
  diverged = sum(entry.diverged(v) for v in values)
  if not status:
    if len(values) < len(entry.seeds):
      status = f"not run ({len(values)} of {len(entry.seeds)} runs)"
    else:
      status = "ok" if diverged == len(values) else "MISMATCH: a run did not diverge"
  finals = ", ".join("non-finite" if v == float("inf") else fmt(v) for v in values)
  above = f" or > {fmt(entry.above)}" if entry.above != float("inf") else ""
  return {"experiment": name, "runs": point_name(entry.overrides), "metric": entry.metric,
          "expected": f"diverges (non-finite{above})",
          "measured": f"{diverged} of {len(values)} diverged ({finals})" if values else "",
          "seeds": ",".join(map(str, entry.seeds)), "source": entry.kind, "status": status}


def relation_outcome(name: str, entry: Beats, better: list[float], worse: list[float],
                     status: str = "") -> dict:
  """One row of a relation: by how much the better grid point must beat the worse one, and did."""
  gain = None
  if not status:
    if min(len(better), len(worse)) < len(entry.seeds):
      status = f"not run ({len(better) + len(worse)} of {2 * len(entry.seeds)} runs)"
    else:
      gain = entry.gain(float(np.mean(better)), float(np.mean(worse)))
      status = "ok" if gain >= entry.margin else "MISMATCH"
  lower = " (lower)" if entry.mode == "min" else ""
  return {"experiment": name,
          "runs": f"{point_name(entry.better)} beats {point_name(entry.worse)}",
          "metric": entry.metric + lower, "expected": f"by ≥ {fmt(entry.margin)}",
          "measured": "" if gain is None else f"by {fmt(gain)}",
          "seeds": ",".join(map(str, entry.seeds)), "source": entry.kind, "status": status}


def is_relation(row: dict) -> bool:
  return " beats " in row["runs"]


def counts(rows: list[dict]) -> str:
  """'12 independent, 8 recorded and 4 relations ok; 2 skipped; ...': the registry's summary, the
  entries of independent sources (a paper, an analytic baseline) apart from our recorded ones."""
  def n(pred):
    return sum(1 for r in rows if pred(r))

  def ok(r, kinds):
    return r["status"] == "ok" and not is_relation(r) and r.get("source") in kinds

  parts = [f"{n(lambda r: ok(r, INDEPENDENT))} independent (paper, analytic), "
           f"{n(lambda r: ok(r, ('recorded',)))} recorded, "
           f"{n(lambda r: ok(r, ('estimate',)))} estimated and "
           f"{n(lambda r: r['status'] == 'ok' and is_relation(r))} relations ok"]
  for status, word in (("skipped", "skipped"), ("not run", "not run"), ("MISMATCH", "mismatched")):
    if n(lambda r: r["status"].startswith(status)):
      parts.append(f"{n(lambda r: r['status'].startswith(status))} {word}")
  return "; ".join(parts)


def field_of(config, field: str):
  try:
    return functools.reduce(getattr, field.split("."), config)
  except AttributeError:
    raise ConfigError(f"--where {field}: the config has no such field") from None


def matches(value, values: list) -> bool:
  """Whether a config value is one of `--where`'s (typed as --sweep types them: 3e-3 == 0.003)."""
  as_tuple = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v
  return any(as_tuple(value) == as_tuple(v) for v in values)


def plan(path: str, quick: bool = False, overrides: dict | None = None,
         where: dict[str, list] | None = None) -> list[tuple]:
  """[(entry, [the config of each grid point it reads])] of one experiment file, every config
  checked (ConfigError); with `where` ({field: values}), only the entries with a grid point
  whose every `where` field has one of its values."""
  from train import data
  from train.config import validate

  try:
    module = load_experiment(path)
    base, entries = registry(module, quick)
    configs = [module.get_config() for _ in entries]
  except ConfigError:
    raise
  except Exception as e:  # noqa: BLE001  whatever the experiment file raises: never "ok"
    raise ConfigError(f"{path}: {type(e).__name__}: {one_line(e)}") from e
  for field in where or {}:  # every one, before any entry is left out by another
    field_of(module.get_config(), field)
  planned = []
  for entry, config in zip(entries, configs):
    points = [sweep.apply(config, {**base, **(overrides or {}), **point})
              for point in entry_points(entry)]
    for point in points:
      validate(point, data.DATASETS)
    if where and not any(all(matches(field_of(point, field), values)
                             for field, values in where.items()) for point in points):
      continue
    planned.append((entry, points))
  return planned


def check_runs(parent: str, planned: list[tuple], download: bool) -> None:
  """Refuses a finished run of an entry to be trained whose config has changed since
  (`train.workdir.check_unchanged`) before anything trains: training would prepare its dataset
  first, then refuse."""
  from train.workdir import check_unchanged, config_changes

  for entry, configs in planned:
    if not download and missing_dataset(configs[0].dataset):
      continue  # skipped, not trained
    for point, config in zip(entry_points(entry), configs):
      for member in entry_members(entry, point):
        run = os.path.join(parent, sweep.member_name(member))
        if os.path.exists(os.path.join(run, "results.json")):
          check_unchanged(run, config_changes(run, sweep.apply(config, member)))


def reproduce(path: str, root: str, quick: bool = False, overrides: dict | None = None,
              download: bool = False, run: bool = True,
              where: dict[str, list] | None = None) -> list[dict]:
  """Trains (when `run`) and checks every registry entry of one experiment file (`where`: those
  `plan` keeps)."""
  name = experiment_name(path)
  planned = plan(path, quick, overrides, where)
  if not planned:
    return [{"experiment": name, "runs": "-", "status": "no entry with such a run (--where)"
             if where else "no expected result (a benchmark)"}]
  parent = os.path.join(root, name)  # its finished runs checked by main(), before any trains
  rows = []
  for entry, configs in planned:
    why = None if download else missing_dataset(configs[0].dataset)
    status = f"skipped: {why}" if why else ""
    measured, stale = [], set()
    for point, config in zip(entry_points(entry), configs):
      if run and not why:
        try:
          sweep.run_members(config, parent, entry_members(entry, point))
        except TrainingDiverged:  # reported by the sweep; measure finds its diverged.json, and
          pass  # the other entries still run
      values, point_stale, diverged = measure(parent, entry, config, point)
      if diverged and not status:
        status = "MISMATCH: diverged"
      measured.append(values)
      stale.update(point_stale)
    if stale and not status:
      status = f"MISMATCH: stale runs (they differ in {', '.join(sorted(stale))})"
    if isinstance(entry, Beats):
      rows.append(relation_outcome(name, entry, *measured, status))
    elif isinstance(entry, Diverges):
      rows.append(divergence_outcome(name, entry, measured[0], status))
    else:
      rows.append(outcome(name, entry, measured[0], status))
  return rows


# README generation --------------------------------------------------------------------------------

BLOCK = re.compile(r"<!-- results:(\S+) begin -->\n.*?<!-- results:\1 end -->", re.S)


def experiment_block(paths: list[str], root: str) -> str:
  """Experiments' registry checks and their runs' report table (one table over all), Markdown."""
  names = [experiment_name(p) for p in paths]
  rows = [r for p in paths for r in reproduce(p, root, run=False)]
  if len(paths) == 1:
    rows = [{k: v for k, v in r.items() if k != "experiment"} for r in rows]
  lines = ["`" + " && ".join(f"python -m train.tools.reproduce experiments/{n}.py" for n in names) + "`",
           "", report.format_table(rows, markdown=True)]
  dirs = [os.path.join(root, n) for n in names]
  runs = report.find_runs(dirs)
  if runs:
    lines += ["", f"`python -m train.tools.report {' '.join(dirs)} --markdown`", "",
              report.format_table(report.rows(runs), markdown=True)]
  return "\n".join(lines)


def summary_block(root: str) -> str:
  rows = [r for p in all_experiments() for r in reproduce(p, root, run=False)]
  return "\n".join([
      f"Generated by `python -m train.tools.reproduce --readme` on {datetime.date.today()} from the "
      f"runs in `{root}/` (their results.json); the runs come from "
      "`python -m train.tools.reproduce --all`. " + counts(rows) + ".", "",
      report.format_table(rows, markdown=True)])


def update_readme(readme: str, root: str, extra: dict[str, str] | None = None,
                  only: set[str] | None = None) -> list[str]:
  """Rewrites every `<!-- results:NAME begin/end -->` block of `readme` (or those named in `only`,
  leaving the others as they are): NAME = summary, an experiment, or a key of `extra`. Returns
  the names written."""
  try:
    with open(readme) as f:
      text = f.read()
  except OSError as e:
    raise ConfigError(f"--readme {readme}: {e.strerror}") from e
  names = {experiment_name(p): p for p in all_experiments()}
  written = []

  def fill(match):
    key = match.group(1)
    if only is not None and key not in only:
      return match.group(0)
    if key == "summary":
      body = summary_block(root)
    elif all(n in names for n in key.split("+")):  # one table over several experiments
      body = experiment_block([names[n] for n in key.split("+")], root)
    elif extra and key in extra:
      body = extra[key]
    else:
      raise ConfigError(f"{readme}: no generator for the block results:{key}")
    written.append(key)
    return f"<!-- results:{key} begin -->\n{body}\n<!-- results:{key} end -->"

  text = BLOCK.sub(fill, text)
  with open(readme, "w") as f:
    f.write(text)
  return written


def analysis_blocks() -> dict[str, str]:
  """The README blocks of every analysis (experiments/analysis/X.py's `readme_blocks()`), made from
  the files its command wrote."""
  import experiments.analysis

  blocks = {}
  for module in pkgutil.iter_modules(experiments.analysis.__path__):
    analysis = importlib.import_module(f"experiments.analysis.{module.name}")
    blocks.update(getattr(analysis, "readme_blocks", dict)())
  return blocks


def parse_overrides(items: list[str]) -> dict:
  out = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep:
      raise ConfigError(f"--set {item!r}: expected FIELD=VALUE")
    out[key.removeprefix("config.")] = sweep.parse_value(value)
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("experiments", nargs="*", help="experiment files (experiments/X.py)")
  parser.add_argument("--all", action="store_true", help="every file in experiments/")
  parser.add_argument("--quick", action="store_true", help="the reduced forms (QUICK)")
  parser.add_argument("--runs", help="where the runs go (default runs/reproduce, runs/quick)")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="a config override for every run (e.g. dataset.data_dir=...)")
  parser.add_argument("--where", action="append", default=[], metavar="FIELD=V1,V2",
                      help="only the entries with a run whose FIELD is one of the values (e.g. "
                      "dataset.name=dates/l25; several --where: all hold)")
  parser.add_argument("--download", action="store_true",
                      help="let catalog datasets download instead of skipping unprepared ones")
  parser.add_argument("--readme", nargs="?", const="README.md docs/*.md", metavar="FILES",
                      help="regenerate the results blocks of FILES (a glob pattern; default: "
                      "README.md and docs/*.md) from the recorded runs; no training")
  parser.add_argument("--blocks", metavar="NAME,NAME",
                      help="with --readme: regenerate only these blocks (e.g. summary,mnist1d_cnn_pool;"
                      " after re-running some experiments), leaving the others as they are")
  args = parser.parse_args(argv)
  root = args.runs or ("runs/quick" if args.quick else "runs/reproduce")
  try:
    if args.readme:
      blocks = analysis_blocks()
      for pattern in args.readme.split():
        for path in sorted(glob.glob(pattern)) or [pattern]:  # a missing file: update_readme says so
          written = update_readme(path, root, blocks,
                                  set(args.blocks.split(",")) if args.blocks else None)
          print(f"{path}: regenerated {', '.join(written) or 'no blocks'}")
      return 0
    paths = all_experiments() if args.all else args.experiments
    if not paths:
      parser.error("name experiment files, or --all")
    overrides = parse_overrides(args.set)
    where = sweep.parse_sweep(args.where, "--where")  # typed as --sweep's values
    for path in paths:  # every config, and the finished runs, checked before anything trains
      check_runs(os.path.join(root, experiment_name(path)),
                 plan(path, args.quick, overrides, where), args.download)
    rows = []
    for path in paths:
      rows += reproduce(path, root, args.quick, overrides, args.download, where=where)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(report.format_table(rows, markdown=False))
  bad = [r for r in rows if r["status"].startswith(("MISMATCH", "not run"))]
  print(f"{len(rows) - len(bad)} of {len(rows)} entries ok or skipped; "
        f"{len(bad)} do not match" if bad else f"all {len(rows)} entries ok or skipped")
  print(counts(rows))
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
