"""train_and_evaluate: check the config, build everything, resume, train, evaluate, write results."""
import dataclasses
import functools
import importlib.metadata
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

import nets
from experiments.common import base_config
from train import checkpoint, data, log, optim, preempt, sharding
from train.config import ConfigError, validate
from train.guard import TrainingDiverged, check_state, summarize  # noqa: F401  (re-exported)
from train.steps import create_state, evaluate, make_eval_step, make_train_step

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "grain",
             "numpy")


def check_workdir(workdir: str) -> None:
  """Creates `workdir` (an existing one is kept as it is) and proves it writable."""
  try:
    os.makedirs(workdir, exist_ok=True)
    tempfile.TemporaryFile(dir=workdir).close()
  except OSError as e:
    raise ConfigError(f"cannot write to workdir {workdir!r}: {e.strerror}") from e


def flat(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
  return out


def default_fields(config: ml_collections.ConfigDict) -> dict:
  """Every field's default: `base_config()`'s, and the model class's for `model.*`."""
  defaults = flat(json.loads(base_config().to_json_best_effort()))
  cls = nets.MODELS.get(config.model.name)
  if cls is not None:
    fields = {f: getattr(cls, f) for f in nets.model_fields(cls)}
    defaults.update(flat(json.loads(json.dumps({"model": fields}, default=str))))
  return defaults


def config_changes(workdir: str, config: ml_collections.ConfigDict) -> list[str]:
  """The fields in which `config` differs from the workdir's config.json (none if it has none).

  A field the old config.json lacks (one added to the code since) counts only when it is not at
  its default, so runs recorded before a new option existed still match."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    old = flat(json.load(f))
  new = flat(json.loads(config.to_json_best_effort()))
  defaults = default_fields(config)
  return sorted(k for k in old.keys() | new.keys() if old.get(k, defaults.get(k)) != new.get(k))


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes config.json; an older, different one is kept as config.<mtime>.json."""
  path = os.path.join(workdir, "config.json")
  if config_changes(workdir, config):
    os.replace(path, os.path.join(workdir, f"config.{int(os.path.getmtime(path))}.json"))
  log.write_json(path, json.loads(config.to_json_best_effort()))


@dataclasses.dataclass
class Setup:
  """What a config builds before any step runs; `train.bench` times the same `train_step`."""
  model: nn.Module
  task: str
  mesh: jax.sharding.Mesh
  train_iter: Any  # grain iterator of this process's rows of each global batch
  eval_batches: Callable  # () -> global eval batches, sharded over the mesh
  batch_sharding: jax.sharding.NamedSharding
  x_example: np.ndarray  # one host-local input, for init and summaries
  abstract_state: Any  # ShapeDtypeStructs with their shardings: what init makes and restore fills
  init: Callable  # () -> the initial TrainState, laid out over the mesh
  train_step: Callable  # jitted (state, batch) -> (state, metrics), state donated
  eval_step: Callable  # jitted (state, batch) -> metric sums


def setup(config: ml_collections.ConfigDict) -> Setup:
  """Checks `config` (one-line ConfigErrors, before anything is compiled) and builds the run."""
  validate(config, data.DATASETS)
  data.check_name(config.dataset)
  sharding.initialize_distributed(config)
  mesh = sharding.make_mesh(config)
  model = nets.create_model(**config.model)
  train_reader = data.Reader(config.dataset, config.dataset.train_split)
  check_model_fits_data(config, train_reader)
  task = train_reader.spec.task
  eval_reader = data.Reader(config.dataset, config.dataset.eval_split)
  tx, schedule = optim.make_optimizer(
      config.optimizer, config.num_steps,
      max_skips=config.max_nonfinite_skips if config.nonfinite == "skip" else 0)
  x_example = next(data.eval_batches(config, eval_reader)())["x"][:1]
  init = functools.partial(create_state, model, tx, x_example, config.seed)
  try:
    abstract_state = jax.eval_shape(init)
  except ValueError as e:  # the models' own checks of their fields
    raise ConfigError(f"config.model: {e}") from e
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  batch_sharding, replicated = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  train_step = make_train_step(model, tx, schedule, task, config.grad_accum_steps)
  return Setup(
      model=model, task=task, mesh=mesh, x_example=x_example, batch_sharding=batch_sharding,
      train_iter=data.train_iterator(config, train_reader),
      eval_batches=data.eval_batches(config, eval_reader, batch_sharding),
      abstract_state=sharding.with_shardings(abstract_state, state_sharding),
      init=jax.jit(init, out_shardings=state_sharding),
      train_step=jax.jit(train_step, in_shardings=(state_sharding, batch_sharding),
                         out_shardings=(state_sharding, replicated), donate_argnums=0),
      eval_step=jax.jit(make_eval_step(model, task), in_shardings=(state_sharding, batch_sharding),
                        out_shardings=replicated))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns results.json
  (on process 0; other processes return {}).

  Everything a user can get wrong is checked before anything is compiled or written."""
  run = setup(config)
  abstract_state, task, main = run.abstract_state, run.task, sharding.is_main_process()
  check_workdir(workdir)
  checkpoint.check_space(workdir, abstract_state, config.checkpoint.keep)
  manager = checkpoint.open_manager(workdir, config.checkpoint)
  start, state, progress = checkpoint.restore_latest(manager, abstract_state)
  changes = config_changes(workdir, config)
  if start:
    if start > config.num_steps:
      raise ConfigError(f"{workdir} holds a checkpoint at step {start}, past "
                        f"config.num_steps={config.num_steps}; use a new --workdir")
  results_path = os.path.join(workdir, "results.json")
  if start == config.num_steps and os.path.exists(results_path):
    if changes:
      raise ConfigError(f"{workdir} already finished with another config (differing: "
                        f"{', '.join(changes)}); use a new --workdir")
    print(f"{workdir} already finished {start} steps; its results stand (see results.json)")
    with open(results_path) as f:
      return json.load(f)
  if start and changes and main:
    print(f"Note: resuming with a config that differs from config.json in {', '.join(changes)}")
  if main:
    write_config(workdir, config)
  wall_time_s, pending, train_iter = 0.0, [], run.train_iter
  if start:
    train_iter.set_state(progress["data_iterator"])
    pending = checkpoint.unpack_metrics(progress.get("pending_train_metrics", []))
    wall_time_s = progress["wall_time_s"]
  else:
    state = run.init()
  num_params = sum(p.size for p in jax.tree.leaves(state.params))
  if main:
    log.drop_metrics_after(workdir, start)  # rows a crashed run wrote past its checkpoint
    if start:
      print(f"Resumed from step {start} of {workdir}")
    summary = nn.tabulate(run.model, jax.random.PRNGKey(0), depth=1,
                          console_kwargs={"force_terminal": False, "width": 100})
    print(summary(run.x_example, train=False))
    print(f"{config.model.name}: {num_params:,} parameters; {config.dataset.name}; "
          f"{config.num_steps} steps of batch {config.batch_size} on {jax.device_count()} x "
          f"{jax.devices()[0].device_kind} (mesh {dict(run.mesh.shape)})")

  train_step, eval_step, eval_batches = run.train_step, run.eval_step, run.eval_batches
  logger = log.Logger(workdir, start, config.num_steps, write_files=main)
  t_run = time.time()
  t_sync, steps_since_sync, t_saved = time.time(), 0, time.time()
  batches = data.prefetch_to_device(train_iter, run.batch_sharding)
  preemption = preempt.Preemption().install()  # SIGTERM/SIGINT: save after this step, then stop
  try:
    for step in range(start + 1, config.num_steps + 1):
      batch, data_state = next(batches)
      state, metrics = train_step(state, batch)
      pending.append(metrics)
      steps_since_sync += 1
      logger.advance()
      do_save = step % config.checkpoint.every == 0 or step == config.num_steps
      # Every checkpoint gets eval metrics, so the best one is chosen among all of them.
      do_eval = step % config.eval_every == 0 or do_save
      if step % config.log_every == 0 or do_eval:
        # The only host sync of the loop; raises TrainingDiverged on a NaN/Inf (config.nonfinite).
        train_metrics = summarize(pending, step, state, manager.latest_step(), config.nonfinite)
        train_metrics["examples_per_s"] = (steps_since_sync * config.batch_size
                                           / (time.time() - t_sync))
        logger.write(step, "train", train_metrics)
        pending = []
      if do_eval:
        eval_metrics = evaluate(eval_step, state, eval_batches(), task)
        logger.write(step, config.dataset.eval_split, eval_metrics)
      stop = preemption.requested
      unscheduled = not do_save and (stop or bool(
          config.checkpoint.every_s and time.time() - t_saved >= config.checkpoint.every_s))
      if jax.process_count() > 1:  # all processes save and stop together, at a host sync, when
        # any of them was signalled or is due
        stop, unscheduled = sharding.agree(stop, unscheduled) if not pending else (False, False)
      if do_save or unscheduled:  # unscheduled: no eval; the train metrics not yet logged go along
        check_state(state, step, manager.latest_step())
        progress = {"data_iterator": data_state, "wall_time_s": wall_time_s + time.time() - t_run,
                    "pending_train_metrics": checkpoint.pack_metrics(pending)}
        checkpoint.save(manager, step, state, progress, config,
                        metrics=None if unscheduled else eval_metrics)
        t_saved = time.time()
      if stop:
        raise preempt.Preempted(f"stopped by {preemption.name} after step {step}, which is "
                                "checkpointed; run the same command again to resume")
      if not pending:
        t_sync, steps_since_sync = time.time(), 0  # eval and saving stay out of examples/s
  finally:  # also on a crash or Ctrl-C: finish the checkpoint being written, close the files
    preemption.uninstall()
    logger.close()
    manager.wait_until_finished()
    manager.close()
  if not main:
    return {}
  return write_results(workdir, config, num_params, start, wall_time_s + time.time() - t_run)


def check_model_fits_data(config: ml_collections.ConfigDict, reader: data.Reader) -> None:
  """The best-checkpoint metric must be one the task has; the model's output size and input
  vocabulary must be the dataset's (for text, at least the dataset's: a vocabulary padded to a
  multiple of 64, as GPT-2's 50257 -> 50304, runs faster)."""
  metrics = reader.spec.metrics
  if config.checkpoint.best_metric not in metrics:
    raise ConfigError(f"config.checkpoint.best_metric={config.checkpoint.best_metric!r} is not a "
                      f"metric of {config.dataset.name!r}; valid: {', '.join(metrics)}")
  wanted = {"num_outputs": reader.num_outputs, "vocab_size": reader.vocab_size}
  for field, value in wanted.items():
    if field not in config.model or config.model[field] == value:
      continue
    if not (reader.spec.text and config.model[field] > value):
      raise ConfigError(f"config.model.{field}={config.model[field]} but {config.dataset.name!r} "
                        f"needs {value}{' (or more)' if reader.spec.text else ''}")


def write_results(workdir, config, num_params, start, wall_time_s) -> dict:
  rows = log.read_metrics(workdir)
  evals = [r for r in rows if r["split"] == config.dataset.eval_split]
  best_metric, sign = config.checkpoint.best_metric, (1 if config.checkpoint.best_mode == "max" else -1)
  best = max(evals, key=lambda r: sign * r[best_metric])
  speed = [r["examples_per_s"] for r in rows if r["split"] == "train"]
  strip = lambda r: {k: v for k, v in r.items() if k not in ("split", "time")}
  results = {
      "workdir": os.path.basename(os.path.normpath(workdir)),
      "model": config.model.name,
      "dataset": config.dataset.name,
      "seed": config.seed,
      "eval_split": config.dataset.eval_split,
      "final": strip(evals[-1]),
      "best": strip(best),  # by checkpoint.best_metric, among the evaluations on eval_split
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
  log.plot_curves(workdir)
  return results
