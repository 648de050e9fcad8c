"""Orbax checkpoints of everything a resume needs: the state pytree, the data iterator's position
(with the wall time so far) and the config that wrote it. Keeps the latest `keep` steps plus the best one by the configured validation metric."""
import glob
import json
import logging
import os
import re
import shutil
import sys
import threading

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

import nets
from train.config import ConfigError


class _NoMetricsWarning(logging.Filter):
  """orbax warns on every save without metrics once the manager ranks checkpoints; ours are the
  unscheduled saves (checkpoint.every_s, a signal), which are never the best by design."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "did not provide metrics" not in record.getMessage()


logging.getLogger("absl").addFilter(_NoMetricsWarning())


def checkpoints_dir(workdir: str) -> str:
  """The workdir's checkpoints/, once any unreadable metrics file in it is removed (with a
  warning): orbax reads them all when a manager opens and stops at a torn one, before a resume
  could fall back to another checkpoint. Only that checkpoint's rank for `best` is lost."""
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  for path in sorted(glob.glob(os.path.join(directory, "*", "metrics", "metrics"))):
    try:
      with open(path) as f:
        json.load(f)
    except (OSError, ValueError) as e:
      print(f"Warning: removed the unreadable {path} ({type(e).__name__}); that checkpoint is "
            "no longer a candidate for the best", file=sys.stderr)
      os.remove(path)
  return directory


def open_manager(workdir: str, cfg: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  sign = 1.0 if cfg.best_mode == "max" else -1.0
  policy = policies.AnyPreservationPolicy([
      policies.LatestN(n=cfg.keep),
      policies.BestN(get_metric_fn=lambda m: sign * m[cfg.best_metric], n=1,
                     keep_checkpoints_without_metrics=False),
  ])
  # best_fn: without it orbax's best_step() is the latest step, and it writes no metrics to disk,
  # so a resumed run's BestN finds none and deletes the best checkpoint.
  options = ocp.CheckpointManagerOptions(
      preservation_policy=policy, best_fn=lambda m: m[cfg.best_metric], best_mode=cfg.best_mode,
      create=True)
  handlers = {"state": ocp.StandardCheckpointHandler(), "progress": ocp.JsonCheckpointHandler(),
              "config": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(checkpoints_dir(workdir), options=options, item_handlers=handlers)


def check_space(workdir: str, abstract_state, keep: int) -> None:
  """ConfigError unless the workdir's disk holds `keep` checkpoints, the best one and one being
  written (each about the state's size)."""
  need = (keep + 2) * sum(np.dtype(a.dtype).itemsize * int(np.prod(np.shape(a)))
                          for a in jax.tree.leaves(abstract_state))
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise ConfigError(f"workdir {workdir!r} has {free / 2**20:.1f} MiB free; its checkpoints need "
                      f"about {need / 2**20:.1f} MiB (checkpoint.keep={keep}, the best one and one "
                      "being written)")


def save(manager, step: int, state, progress: dict, config, metrics: dict):
  """Asynchronous: returns once the arrays are copied off the device. `progress` holds the data
  iterator's state and the wall time so far; `metrics` rank the checkpoint for `best_metric`.
  A failed write (of this save, or of the previous one, which orbax reports here) is an OSError."""
  try:
    manager.save(step, metrics=metrics, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        progress=ocp.args.JsonSave(progress),
        config=ocp.args.JsonSave(config.to_dict()),
    ))
  except Exception as e:
    raise as_os_error(e, manager.directory) from e


def wait(manager) -> None:
  """Waits for the checkpoint being written; its failed write is an OSError."""
  try:
    manager.wait_until_finished()
  except Exception as e:
    raise as_os_error(e, manager.directory) from e


def as_os_error(e: Exception, directory) -> Exception:
  """orbax passes on tensorstore's failed writes as ValueError('... Failed writing: "PATH" ...
  [os_error_code='28']'): the OSError it stands for. Any other error is returned as it is."""
  code = re.search(r"os_error_code='(\d+)'", str(e))
  if isinstance(e, OSError) or not code:
    return e
  path = re.search(r'Failed writing: "([^"]+)"', str(e))
  return OSError(int(code.group(1)), os.strerror(int(code.group(1))),
                 path.group(1) if path else os.fspath(directory))


CLOSE_AFTER_ERROR_S = 30.0


def close(manager, after_error: bool = False) -> None:
  """Waits for the checkpoint being written, then closes the manager. After an error, at most
  CLOSE_AFTER_ERROR_S and silently: a save stuck on a full or vanished disk must not hang the
  run's end (its partial tmp dir is never taken as a checkpoint), and the error being raised
  already says what went wrong."""
  if not after_error:
    wait(manager)
    manager.close()
    return

  def close_quietly():
    try:
      manager.close()
    except Exception:  # noqa: BLE001  the write that failed; the error in flight reports it
      pass

  thread = threading.Thread(target=close_quietly, daemon=True)
  thread.start()
  thread.join(CLOSE_AFTER_ERROR_S)


def last_good_step(workdir: str) -> int | None:
  """The latest finished checkpoint on disk (orbax renames a save's tmp dir to its step when it
  is complete), without asking orbax, whose state may be what failed."""
  try:
    steps = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()]
  except OSError:
    return None
  return max(steps, default=None)


def run_config(workdir: str) -> dict | None:
  """The config a run was started with: its config.json or, when that is unreadable (a truncated
  file), the config stored in its latest checkpoint, with a warning. None for a new workdir."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    step = last_good_step(workdir)
    stored = stored_config(workdir, step) if step else None
    if stored is None:
      raise ConfigError(f"{path} is unreadable ({type(e).__name__}: {e}) and there is no "
                        "checkpoint holding the config; move it away to start afresh") from e
    print(f"Warning: {path} is unreadable ({type(e).__name__}); using the config stored in the "
          f"checkpoint of step {step}", file=sys.stderr)
    return stored


def stored_config(workdir: str, step: int) -> dict | None:
  """The config saved with the checkpoint of `step` (None when that cannot be read)."""
  try:
    with open(os.path.join(workdir, "checkpoints", str(step), "config", "metadata")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def path_str(path) -> str:
  """'params/Dense_0/kernel': the same for a live pytree and the checkpoint's metadata, whose
  containers come back as plain dicts and lists."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def check_compatible(manager, step: int, abstract_state, only: tuple[str, ...] = (),
                     advice: str = "Use a new --workdir, or the config that wrote it") -> None:
  """ConfigError naming the parameter paths whose shape differs from the checkpoint's (of those
  under the top-level keys `only`, when given), then `advice`."""
  stored = manager.item_metadata(step)["state"]
  stored = {path_str(p): tuple(m.shape) for p, m in jax.tree_util.tree_flatten_with_path(stored)[0]
            if not only or path_str(p).split("/")[0] in only}
  wanted = {path_str(p): tuple(np.shape(a))
            for p, a in jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
  diffs = [f"{k} missing from the checkpoint" for k in wanted.keys() - stored.keys()]
  diffs += [f"{k} only in the checkpoint" for k in stored.keys() - wanted.keys()]
  diffs += [f"{k} is {stored[k]} in the checkpoint, {wanted[k]} in the config"
            for k in wanted.keys() & stored.keys() if stored[k] != wanted[k]]
  if diffs:
    diffs.sort(key=lambda d: (not d.startswith("params/"), d))  # the architecture first
    more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
    raise ConfigError(f"the checkpoint at step {step} in {manager.directory} does not fit this "
                      f"config: {'; '.join(diffs[:3])}{more}. {advice}")


def restore(manager, step: int, abstract_state):
  """(state, progress) as saved at `step`."""
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      progress=ocp.args.JsonRestore(),
  ))
  return restored["state"], restored["progress"]


def restore_latest(manager, abstract_state):
  """(step, state, progress) of the latest readable checkpoint; (0, None, None) when there is none.

  A checkpoint that does not fit `abstract_state` is the user's mistake (ConfigError). One that
  cannot be read (a truncated or missing file) is skipped with a warning naming its step, and the
  one before it is tried; once one is read, the unreadable ones are moved to checkpoints.corrupt/.
  When none can be read, ConfigError, and nothing is moved."""
  unreadable = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      check_compatible(manager, step, abstract_state)
      restored = restore(manager, step, abstract_state)
      progress = restored[1]
      if not (isinstance(progress, dict) and {"data_iterator", "wall_time_s"} <= progress.keys()):
        raise ValueError(f"damaged progress/metadata: {str(progress)[:50]!r}")
    except ConfigError:
      raise
    except Exception as e:  # noqa: BLE001  orbax and tensorstore raise many kinds on a bad file
      reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
      print(f"Warning: the checkpoint at step {step} is unreadable ({reason}); trying the one "
            "before it", file=sys.stderr)
      unreadable.append(step)
      continue
    if unreadable and jax.process_count() > 1:  # one process moves, the others wait for it
      from jax.experimental import multihost_utils  # noqa: PLC0415
      if jax.process_index() == 0:
        for bad in unreadable:
          quarantine(manager, bad)
      multihost_utils.sync_global_devices("quarantined unreadable checkpoints")
      manager.reload()
    else:
      for bad in unreadable:
        print(f"Warning: moved the unreadable checkpoint of step {bad} to "
              f"{quarantine(manager, bad)}", file=sys.stderr)
    return (step, *restored)
  if unreadable:
    raise ConfigError(f"none of the checkpoints in {manager.directory} can be read (steps "
                      f"{', '.join(map(str, unreadable))}); move that directory away to start "
                      "afresh")
  return 0, None, None


def quarantine(manager, step: int) -> str:
  """Moves step `step` out of the manager's directory, so it is neither restored nor in the way of
  the resumed run's save at that step."""
  directory = os.fspath(manager.directory)
  dest = os.path.join(os.path.dirname(directory), "checkpoints.corrupt", str(step))
  if os.path.exists(dest):
    shutil.rmtree(dest)
  os.makedirs(os.path.dirname(dest), exist_ok=True)
  os.replace(os.path.join(directory, str(step)), dest)
  manager.reload()
  return dest


def pack_metrics(rows: list[dict]) -> list[dict]:
  """Train metrics not yet averaged, for a checkpoint between host syncs: one row per step, {name:
  [value, dtype]} (a call of n steps, config.steps_per_call, gave one row of n values each).
  Exact: a float32 (or bfloat16) value is a Python float without rounding."""
  steps = []
  for row in jax.device_get(rows):
    values = {k: np.atleast_1d(v) for k, v in row.items()}
    n = len(next(iter(values.values())))
    steps += [{k: [v[i].item(), str(v.dtype)] for k, v in values.items()} for i in range(n)]
  return steps


def unpack_metrics(rows: list[dict]) -> list[dict]:
  return [{k: np.asarray(v, jax.numpy.dtype(dtype)) for k, (v, dtype) in row.items()}
          for row in rows]


WARM_START = ("params", "batch_stats")


def check_init_from(run_dir: str, abstract_state) -> int:
  """The step of the latest checkpoint of `run_dir` (config.init_from), whose parameters fit the
  config's: ConfigError otherwise. It reads metadata only, so a run checks it before its own
  workdir is touched."""
  step = last_good_step(run_dir)
  if step is None:
    raise ConfigError(f"config.init_from={run_dir!r} holds no checkpoint")
  manager = ocp.CheckpointManager(checkpoints_dir(run_dir),
                                  item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  try:
    check_compatible(manager, step, {k: getattr(abstract_state, k) for k in WARM_START},
                     only=WARM_START, advice="config.init_from must be a run of this architecture")
  finally:
    manager.close()
  return step


def warm_start(run_dir: str, state, abstract_state):
  """`state` with the parameters and BatchNorm statistics of the latest checkpoint of `run_dir`
  (config.init_from, checked by `check_init_from`); its optimizer state, step and RNG are not
  taken."""
  step = check_init_from(run_dir, abstract_state)
  manager = ocp.CheckpointManager(checkpoints_dir(run_dir),
                                  item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  target = {k: getattr(abstract_state, k) for k in WARM_START}
  try:
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))["state"]
  finally:
    manager.close()
  print(f"Initialised the parameters from the checkpoint of step {step} of {run_dir}")
  return state.replace(**{k: restored.get(k, {}) for k in WARM_START})


def load_for_inference(workdir: str):
  """(config, model, variables, step) from a run's config.json and latest checkpoint."""
  stored = run_config(workdir)
  if stored is None:
    raise ConfigError(f"{workdir!r} is not a run directory: it has no config.json")
  config = ml_collections.ConfigDict(stored)
  manager = ocp.CheckpointManager(checkpoints_dir(workdir),
                                  item_handlers={"state": ocp.StandardCheckpointHandler()})
  step = manager.latest_step()
  if step is None:
    raise ConfigError(f"{workdir!r} has no checkpoint yet")
  state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
  manager.close()
  model = nets.create_model(**config.model)
  return config, model, {"params": state["params"], "batch_stats": state.get("batch_stats", {})}, step
