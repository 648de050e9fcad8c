"""Sweeps: one config over a grid of overrides (seeds and/or any fields), each member in its own
workdir under a parent, run one after another on this machine. A finished member is skipped (its
results.json stands), so running the same command again resumes the sweep.

  python -m train --config experiments/mnist1d_cnn.py --workdir runs/lr \
      --sweep seed=0,1,2 --sweep optimizer.lr=1e-3,3e-3     # 6 members: runs/lr/seed=0,lr=0.001, ...
  python -m train.tools.report runs/lr                            # table + curves over the members

The parent's sweep.json lists the axes and each member's overrides.
"""
import ast
import functools
import itertools
import json
import os

import ml_collections

from train import log
from train.config import ConfigError, missing_field


def parse_value(text: str):
  """'1e-3' -> 0.001, '(32, 64)' -> (32, 64), 'True' -> True; anything else stays a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def split_values(text: str) -> list[str]:
  """Splits at the commas outside brackets: '(1,2),(3,4)' -> ['(1,2)', '(3,4)']."""
  parts, depth, current = [], 0, ""
  for ch in text:
    depth += (ch in "([{") - (ch in ")]}")
    if ch == "," and depth == 0:
      parts.append(current)
      current = ""
    else:
      current += ch
  return [p.strip() for p in parts + [current]]


def parse_sweep(specs: list[str], flag: str = "--sweep") -> dict[str, list]:
  """['seed=0,1,2', 'optimizer.lr=1e-3,3e-3'] -> {'seed': [0, 1, 2], 'optimizer.lr': [...]}."""
  axes = {}
  for spec in specs:
    key, sep, values = spec.partition("=")
    key = key.strip().removeprefix("config.")
    if not sep or not key or not values.strip() or "" in split_values(values):
      raise ConfigError(f"{flag} {spec!r}: expected FIELD=VALUE1,VALUE2,...")
    if key in axes:
      raise ConfigError(f"{flag}: {key} is given twice")
    axes[key] = [parse_value(v) for v in split_values(values)]
    repeated = [v for i, v in enumerate(axes[key]) if v in axes[key][:i]]
    if repeated:
      raise ConfigError(f"{flag} {spec!r}: {repeated[0]!r} is given twice")
  return axes


def grid(axes: dict[str, list]) -> list[dict]:
  """Every combination, the last axis varying fastest."""
  return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def format_value(value) -> str:
  if isinstance(value, (tuple, list)):
    return "x".join(format_value(v) for v in value)
  return str(value).replace("/", "-").replace(" ", "")


def member_name(overrides: dict) -> str:
  """{'model.cell': 'gru', 'seed': 0} -> 'cell=gru,seed=0' (full field names where the last parts
  would clash)."""
  if not overrides:
    return "default"
  last = [k.split(".")[-1] for k in overrides]
  names = [s if last.count(s) == 1 else k for k, s in zip(overrides, last)]
  return ",".join(f"{n}={format_value(v)}" for n, v in zip(names, overrides.values()))


def apply(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with `overrides` ({'optimizer.lr': 3e-3}) set; unknown fields fail."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    if problem := missing_field(config, key):
      raise ConfigError(problem)
    *parents, field = key.split(".")
    node = functools.reduce(lambda node, name: node[name], parents, config)
    if isinstance(node[field], float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if isinstance(value, str) and node[field] is not None and not isinstance(node[field], str):
      kind = type(node[field]).__name__
      raise ConfigError(f"{key}={value!r}: config.{key} is {'an' if kind[0] in 'aeiou' else 'a'} "
                        f"{kind}, not a string")
    with node.ignore_type():  # e.g. an int kernel_size where the config has a tuple
      node[field] = value
  return config


def run_members(config: ml_collections.ConfigDict, parent: str, members: list[dict],
                axes: dict | None = None) -> dict[str, dict]:
  """Trains `config` with each member's overrides in parent/<member_name>, one after another.

  Every member's config is built (and bad fields reported) before any is trained. Returns
  {workdir: results.json} for the members that finished; a member that diverges is reported and
  the sweep goes on, then TrainingDiverged names them all."""
  from train import data, sharding
  from train.config import validate
  from train.workdir import check_kind, check_writable, locked

  named = {member_name(m): (m, apply(config, m)) for m in members}
  if len(named) < len(members):  # values that differ but name one folder: (32, 64) and [32, 64]
    names = [member_name(m) for m in members]
    clash = next(n for n in names if names.count(n) > 1)
    raise ConfigError(f"--sweep: members {[m for m in members if member_name(m) == clash]} "
                      f"would share the folder {clash}")
  for _, member_config in named.values():
    validate(member_config, data.DATASETS)
  check_writable(parent, "sweep dir")
  check_kind(parent, sweep=True)
  sharding.initialize_distributed(config)  # before asking which process this is
  # A second sweep on the same parent is refused, naming this one.
  with locked(parent, take=sharding.is_main_process()):
    return run_locked(parent, named, axes)


def run_locked(parent: str, named: dict, axes: dict | None) -> dict[str, dict]:
  from train.loop import TrainingDiverged, train_and_evaluate

  index_path = os.path.join(parent, "sweep.json")
  index = {"axes": {}, "members": {}}
  if os.path.exists(index_path):
    with open(index_path) as f:
      index = json.load(f)
  index["axes"].update(axes or {})
  index["members"].update({name: m for name, (m, _) in named.items()})
  log.write_json(index_path, index)

  results, diverged = {}, []
  for i, (name, (_, member_config)) in enumerate(named.items()):
    workdir = os.path.join(parent, name)
    print(f"[{i + 1}/{len(named)}] {workdir}", flush=True)
    try:
      results[workdir] = train_and_evaluate(member_config, workdir)
    except TrainingDiverged as e:
      print(f"error: {workdir}: {e}", flush=True)
      diverged.append(workdir)
  if diverged:
    raise TrainingDiverged(f"{len(diverged)} of {len(named)} sweep members diverged: "
                           f"{', '.join(diverged)}")
  return results


def run(config: ml_collections.ConfigDict, parent: str, specs: list[str]) -> dict[str, dict]:
  """`--sweep` flags -> every combination, each in its own workdir under `parent`."""
  axes = parse_sweep(specs)
  return run_members(config, parent, grid(axes), axes)
