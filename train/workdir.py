"""A run's directory: proving it writable, the lock held for the life of a run, its config.json
(and how a new config differs from it, and whether the run has finished), and results.json, the
summary every tool reads, or diverged.json, the record of a run the non-finite guard stopped."""
import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import socket
import tempfile
import time

import jax
import ml_collections
import numpy as np

import nets
from train import checkpoint, data, log
from train.config import ConfigError, base_config, flat

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "grain",
             "numpy")


def check_writable(workdir: str, what: str = "workdir") -> None:
  """Creates `workdir` (an existing one is kept as it is) and proves it writable."""
  try:
    os.makedirs(workdir, exist_ok=True)
    tempfile.TemporaryFile(dir=workdir).close()
  except OSError as e:
    raise ConfigError(f"cannot write to {what} {workdir!r}: {e.strerror}") from e


LOCK = "lock"


def check_kind(workdir: str, sweep: bool) -> None:
  """A run's workdir is no sweep's folder, nor the other way round (a report would mix them)."""
  if sweep and os.path.exists(os.path.join(workdir, "config.json")):
    raise ConfigError(f"{workdir} holds a single run (config.json), not a sweep's members; use "
                      "another --workdir for the sweep")
  if not sweep and os.path.exists(os.path.join(workdir, "sweep.json")):
    raise ConfigError(f"{workdir} is a sweep's folder (sweep.json), not a run's; use another "
                      "--workdir, or --sweep to add members")


@contextlib.contextmanager
def locked(workdir: str, take: bool = True):
  """Holds an OS lock (flock) on workdir/lock while the block runs: a second run or sweep on the
  same workdir is a ConfigError naming the holder (pid, host, start time). The kernel releases
  the lock when the holder dies, even by SIGKILL, so none is left stuck. `take=False` (processes
  other than 0 of a multi-process run, which share process 0's lock) takes none."""
  if not take:
    yield
    return
  fd = os.open(os.path.join(workdir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
      raise ConfigError(f"workdir {workdir!r} is in use by {holder}; wait for that run to end "
                        "or use another --workdir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
    yield
  finally:
    os.close(fd)


def default_fields(config: ml_collections.ConfigDict) -> dict:
  """Every field's default: `base_config()`'s, and the model class's for `model.*`."""
  defaults = flat(json.loads(base_config().to_json_best_effort()))
  cls = nets.MODELS.get(config.model.name)
  if cls is not None:
    fields = nets.model_defaults(cls)
    defaults.update(flat(json.loads(json.dumps({"model": fields}, default=str))))
  return defaults


def config_changes(workdir: str, config: ml_collections.ConfigDict) -> list[str]:
  """The fields in which `config` differs from the workdir's config.json (none if it has none).

  A field the old config.json lacks (one added to the code since) counts only when it is not at
  its default, so runs recorded before a new option existed still match."""
  old = checkpoint.run_config(workdir)
  if old is None:
    return []
  old = flat(old)
  new = flat(json.loads(config.to_json_best_effort()))
  defaults = default_fields(config)
  return sorted(k for k in old.keys() | new.keys() if old.get(k, defaults.get(k)) != new.get(k))


# Where a run reads its data from, not what it trains: a run read from another data dir (`reproduce
# --set dataset.data_dir=...`), or prepared there beforehand, is the same run. Which data it read
# is recorded apart, as the dataset's version in results.json.
WHERE_DATA_IS = ("dataset.data_dir", "dataset.download")


def run_changes(changes: list[str]) -> list[str]:
  """The `config_changes` that make another run: all but WHERE_DATA_IS."""
  return [c for c in changes if c not in WHERE_DATA_IS]


def check_unchanged(workdir: str, changes: list[str]) -> None:
  """A finished run's results stand: ConfigError when `changes` make it another run."""
  if changes := run_changes(changes):
    raise ConfigError(f"{workdir} already finished with another config (differing: "
                      f"{', '.join(changes)}); its results stand. To train on from it, use a new "
                      f"--workdir with --config.init_from={workdir}")


def finished(workdir: str, config: ml_collections.ConfigDict, start: int,
             changes: list[str]) -> bool:
  """Whether `workdir` holds a finished run of `config` (results.json, or its latest checkpoint at
  the end of the run that wrote it). Such a run with another config, or a checkpoint past
  config.num_steps, is a ConfigError: training on would stretch its schedule (the learning rate
  jumps), delete its final checkpoints and overwrite results.json. config.init_from continues
  from it in a new workdir instead. A change of WHERE_DATA_IS alone is the same run."""
  if start > config.num_steps:
    raise ConfigError(f"{workdir} holds a checkpoint at step {start}, past "
                      f"config.num_steps={config.num_steps}; use a new --workdir")
  stored = checkpoint.stored_config(workdir, start) if start else None
  has_results = os.path.exists(os.path.join(workdir, "results.json"))
  if has_results or (stored and stored.get("num_steps") == start):
    check_unchanged(workdir, changes)
  return has_results and start == config.num_steps


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes config.json; an older, different one is kept as config.<mtime>.json."""
  path = os.path.join(workdir, "config.json")
  if config_changes(workdir, config):
    os.replace(path, os.path.join(workdir, f"config.{int(os.path.getmtime(path))}.json"))
  log.write_json(path, json.loads(config.to_json_best_effort()))


def read_results(workdir: str) -> dict:
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


def metrics_of(row: dict, step: bool = True) -> dict:
  """A metrics.jsonl row without its bookkeeping: split, time (and step, unless `step`)."""
  return {k: v for k, v in row.items() if k not in ("split", "time") and (step or k != "step")}


def write_results(workdir, config, splits: dict, test: dict, best: dict, num_params: int,
                  start: int, wall_time_s: float) -> dict:
  """results.json: `final` is the test split at the last step (what the registry checks), `best`
  the checkpoint chosen on validation with its test metrics, `validation` the last evaluation."""
  rows = log.read_metrics(workdir)
  validation = [r for r in rows if r["split"] == "validation"]
  speed = [r["examples_per_s"] for r in rows if r["split"] == "train"]
  results = {
      "workdir": os.path.basename(os.path.normpath(workdir)),
      "model": config.model.name,
      "dataset": config.dataset.name,
      "dataset_version": data.dataset_version(config.dataset.name),
      "seed": config.seed,
      "splits": splits,
      "final": {"step": config.num_steps, **test},
      "validation": metrics_of(validation[-1]),
      "best": best,  # {"step", "validation": {...}, "test": {...}}: by checkpoint.best_metric
      "num_params": int(num_params),
      "num_steps": config.num_steps,
      "resumed_from_step": start,
      "wall_time_s": round(wall_time_s, 2),
      "examples_per_s": round(float(np.median(speed)), 1) if speed else None,
      "device": jax.devices()[0].device_kind,
      "platform": jax.default_backend(),
      "python": platform.python_version(),
      "versions": {lib: importlib.metadata.version(lib) for lib in LIBRARIES},
  }
  log.write_json(os.path.join(workdir, "results.json"), results)
  with contextlib.suppress(FileNotFoundError):  # a resumed run that diverged before has finished
    os.remove(os.path.join(workdir, DIVERGED))
  log.plot_curves(workdir)
  return results


DIVERGED = "diverged.json"


def write_diverged(workdir: str, config, error: str) -> None:
  """diverged.json: a run stopped by the non-finite guard is an outcome too (an experiment can
  expect it, `experiments.registry.Diverges`), so it is recorded with the last train metrics."""
  train_rows = [r for r in log.read_metrics(workdir) if r["split"] == "train"]
  log.write_json(os.path.join(workdir, DIVERGED), {
      "workdir": os.path.basename(os.path.normpath(workdir)), "dataset": config.dataset.name,
      "seed": config.seed, "error": error, "last_train": train_rows[-1] if train_rows else None})


def read_diverged(workdir: str) -> dict | None:
  path = os.path.join(workdir, DIVERGED)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
