"""train_and_evaluate: check the config, build everything, resume, train, evaluate, write results.

Model selection reads the validation split only (evaluated every `eval_every` steps and at every
checkpoint, which ranks checkpoints for `best_metric`); the test split is evaluated once, at the
end, on the last and on the best checkpoint.
"""
import dataclasses
import functools
import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

import nets
from train import checkpoint, data, faults, log, optim, sharding, workdir as run_dir
from train.config import ConfigError, validate
from train.faults import TrainingDiverged  # (also re-exported)
from train.steps import create_state, evaluate, make_eval_step, make_multi_step, make_train_step


@dataclasses.dataclass
class Setup:
  """What a config builds before any step runs; `train.tools.bench` times the same `train_step`."""
  model: nn.Module
  task: str
  mesh: jax.sharding.Mesh
  splits: dict[str, str]  # role (train, validation, test) -> the TFDS split that plays it
  train_iter: Any  # grain iterator of this process's rows of each global batch (or their ids)
  train_data: Any  # the train split on the devices (data.device_resident), or None
  eval_batches: dict[str, Callable]  # validation, test -> (() -> global batches on the mesh)
  batch_sharding: jax.sharding.NamedSharding
  x_example: np.ndarray  # one host-local input, for init and summaries
  abstract_state: Any  # ShapeDtypeStructs with their shardings: what init makes and restore fills
  init: Callable  # () -> the initial TrainState, laid out over the mesh
  train_step: Callable  # jitted (state, batch) -> (state, metrics), state donated
  multi_step: Callable  # the same over batches stacked [n, B, ...] (config.steps_per_call > 1)
  eval_step: Callable  # jitted (state, batch) -> metric sums


def setup(config: ml_collections.ConfigDict) -> Setup:
  """Checks `config` (one-line ConfigErrors, before anything is compiled) and builds the run."""
  validate(config, data.DATASETS)
  data.check_name(config.dataset)
  sharding.initialize_distributed(config)
  mesh = sharding.make_mesh(config)
  model = nets.create_model(**config.model)
  spec = data.spec_of(config.dataset.name)
  check_model_fits_data(config, spec, spec.num_outputs or None)  # before any data is generated
  readers = {role: data.reader(config.dataset, role) for role in data.ROLES}
  check_model_fits_data(config, spec, readers["train"].num_outputs)
  if config.dataset.test_name:
    data.check_test_name(config.dataset, readers)
  # Each role's split, with its dataset's name where that is not the run's (test_name).
  splits = {role: r.split if r.dataset == config.dataset.name else f"{r.dataset}:{r.split}"
            for role, r in readers.items()}
  task = readers["train"].spec.task
  train_data = data.device_resident(config, readers["train"], mesh)
  tx, schedule = optim.make_optimizer(
      config.optimizer, config.num_steps,
      max_skips=config.max_nonfinite_skips if config.nonfinite == "skip" else 0)
  example = jax.tree.map(lambda a: a[:1], next(data.eval_batches(config, readers["validation"])()))
  x_example = example["x"]
  init = functools.partial(create_state, model, tx, x_example, config.seed)
  try:
    abstract_state = jax.eval_shape(init)
    out = jax.eval_shape(lambda s: model.apply(
        {"params": s.params, "batch_stats": s.batch_stats}, x_example, train=False), abstract_state)
  except ValueError as e:  # the models' own checks of their fields
    raise ConfigError(f"config.model: {e}") from e
  if out.shape[:-1] != example["label"].shape:  # one output vector per target
    raise ConfigError(f"config.model ({config.model.name}) outputs {out.shape[1:]} per example, "
                      f"but {config.dataset.name!r} has targets of shape "
                      f"{example['label'].shape[1:]} ({task} task)")
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  faults.check_fits_memory(sharding.with_shardings(abstract_state, state_sharding))
  batch_sharding, replicated = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  train_step = make_train_step(model, tx, schedule, task, config.grad_accum_steps)
  jit_step = lambda step, batches: jax.jit(step, in_shardings=(state_sharding, batches),
                                           out_shardings=(state_sharding, replicated),
                                           donate_argnums=0)
  return Setup(
      model=model, task=task, mesh=mesh, x_example=x_example, batch_sharding=batch_sharding,
      splits=splits, train_data=train_data,
      train_iter=data.train_iterator(config, readers["train"], ids_only=train_data is not None),
      eval_batches={role: data.eval_batches(config, readers[role], batch_sharding)
                    for role in ("validation", "test")},
      abstract_state=sharding.with_shardings(abstract_state, state_sharding),
      init=jax.jit(init, out_shardings=state_sharding),
      train_step=jit_step(train_step, batch_sharding),
      multi_step=jit_step(make_multi_step(train_step), sharding.stacked(batch_sharding)),
      eval_step=jax.jit(make_eval_step(model, task), in_shardings=(state_sharding, batch_sharding),
                        out_shardings=replicated))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns results.json
  (on process 0; other processes return {}).

  Everything a user can get wrong is checked before anything is compiled or written. The workdir
  is locked for the run (train/workdir.py); failed writes and out of memory are one-line errors
  (train/faults.py)."""
  run = setup(config)
  if config.init_from and checkpoint.last_good_step(workdir) is None:  # (a resume does not read it)
    checkpoint.check_init_from(config.init_from, run.abstract_state)  # a bad one touches nothing
  run_dir.check_writable(workdir)
  run_dir.check_kind(workdir, sweep=False)
  with (run_dir.locked(workdir, take=sharding.is_main_process()),
        faults.explained(workdir, run.abstract_state)):
    try:
      return train(run, config, workdir)
    except TrainingDiverged as e:
      if sharding.is_main_process():
        run_dir.write_diverged(workdir, config, str(e))
      raise


def train(run: Setup, config: ml_collections.ConfigDict, workdir: str) -> dict:
  main = sharding.is_main_process()
  checkpoint.check_space(workdir, run.abstract_state, config.checkpoint.keep)
  manager = checkpoint.open_manager(workdir, config.checkpoint)
  start, state, progress = checkpoint.restore_latest(manager, run.abstract_state)
  changes = run_dir.config_changes(workdir, config)
  if run_dir.finished(workdir, config, start, changes):
    print(f"{workdir} already finished {start} steps; its results stand (see results.json)")
    return run_dir.read_results(workdir)
  if start and changes and main:
    print(f"Note: resuming with a config that differs from config.json in {', '.join(changes)}")
  if config.init_from and not start:  # a new run from a finished one's parameters
    state = checkpoint.warm_start(config.init_from, run.init(), run.abstract_state)
  if main:
    run_dir.write_config(workdir, config)
  wall_time_s, pending, train_iter = 0.0, [], run.train_iter
  if start:
    train_iter.set_state(progress["data_iterator"])
    pending = checkpoint.unpack_metrics(progress.get("pending_train_metrics", []))
    wall_time_s = progress["wall_time_s"]
  elif state is None:
    state = run.init()
  num_params = sum(p.size for p in jax.tree.leaves(state.params))
  if main:
    log.drop_metrics_after(workdir, start)  # rows a crashed run wrote past its checkpoint
    print_summary(run, config, workdir, start, num_params)
    if config.steps_per_call > 1 and jax.default_backend() == "cpu":
      print(f"Note: config.steps_per_call={config.steps_per_call} on a CPU: XLA:CPU runs "
            "convolutions inside the call's loop several times slower (docs/devices.md)")

  validate_on = run.eval_batches["validation"]
  logger = log.Logger(workdir, start, config.num_steps, write_files=main)
  t_run = time.time()
  # The eval step and the checkpoint's finiteness check compiled now, not at the first evaluation
  # and checkpoint, where the device would wait for them (same programs, so same results).
  jax.block_until_ready(run.eval_step(state, next(validate_on())))
  faults.first_nonfinite(state)
  t_sync, steps_since_sync, t_saved = time.time(), 0, time.time()
  calls = call_sizes(start, config)
  multi = config.steps_per_call > 1
  batches = data.prefetch_to_device(train_iter, run.batch_sharding, run.train_data,
                                    steps=calls if multi else None)
  train_step = run.train_step
  if multi and calls:  # every call size compiled now: one first met mid-run would stall the
    # device there (no calls: a run killed between its last checkpoint and its results)
    first = next(batches)
    batches = itertools.chain([first], batches)
    like = lambda n: jax.tree.map(lambda a: jax.ShapeDtypeStruct((n, *a.shape[1:]), a.dtype,
                                                                 sharding=a.sharding), first[0])
    compiled = {n: run.multi_step.lower(state, like(n)).compile() for n in sorted(set(calls))}
    train_step = lambda state, batches_n: compiled[len(batches_n["x"])](state, batches_n)
  preemption = faults.Preemption().install()  # SIGTERM/SIGINT: save after this call, then stop
  try:
    step = start
    for n in calls:
      batch, data_state = next(batches)
      state, metrics = train_step(state, batch)
      step += n
      pending.append(metrics)
      steps_since_sync += n
      logger.advance(n)
      do_save = step % config.checkpoint.every == 0 or step == config.num_steps
      # Every checkpoint gets validation metrics, so the best one is chosen among all of them.
      do_eval = step % config.eval_every == 0 or do_save
      if step % config.log_every == 0 or do_eval:
        # The only host sync of the loop; raises TrainingDiverged on a NaN/Inf (config.nonfinite).
        train_metrics = faults.summarize(pending, step, state, manager.latest_step(),
                                         config.nonfinite)
        train_metrics["examples_per_s"] = (steps_since_sync * config.batch_size
                                           / (time.time() - t_sync))
        logger.write(step, "train", train_metrics)
        pending = []
      if do_eval:
        eval_metrics = evaluate(run.eval_step, state, validate_on(), run.task)
        logger.write(step, "validation", eval_metrics)
      stop = preemption.requested
      unscheduled = not do_save and (stop or bool(
          config.checkpoint.every_s and time.time() - t_saved >= config.checkpoint.every_s))
      if jax.process_count() > 1:  # all processes save and stop together, at a host sync, when
        # any of them was signalled or is due
        stop, unscheduled = sharding.agree(stop, unscheduled) if not pending else (False, False)
      if do_save or unscheduled:  # unscheduled: no eval; the train metrics not yet logged go along
        faults.check_state(state, step, manager.latest_step())
        progress = {"data_iterator": data_state, "wall_time_s": wall_time_s + time.time() - t_run,
                    "pending_train_metrics": checkpoint.pack_metrics(pending)}
        checkpoint.save(manager, step, state, progress, config,
                        metrics=None if unscheduled else eval_metrics)
        t_saved = time.time()
      if stop:
        raise faults.Preempted(f"stopped by {preemption.name} after step {step}, which is "
                               "checkpointed; run the same command again to resume")
      if not pending:
        t_sync, steps_since_sync = time.time(), 0  # eval and saving stay out of examples/s
    checkpoint.wait(manager)
    # The last checkpoint is on disk: from here a signal stops at once (python -m train's own
    # handler, one line), and one that came while it was written stops the run now.
    preemption.uninstall()
    if preemption.requested:
      raise faults.Preempted(f"stopped by {preemption.name} after step {step}, which is "
                             "checkpointed; run the same command again to test it")
    test, best = test_last_and_best(run, manager, state, config, workdir)
    logger.write(config.num_steps, "test", test)
  finally:  # also on a crash, a failed write or Ctrl-C: finish the checkpoint being written (not
    # forever after an error), close the files
    preemption.uninstall()
    failed = sys.exc_info()[0] is not None
    logger.close(after_error=failed)
    checkpoint.close(manager, after_error=failed)
  if not main:
    return {}
  return run_dir.write_results(workdir, config, run.splits, test, best, num_params, start,
                               wall_time_s + time.time() - t_run)


def call_sizes(start: int, config: ml_collections.ConfigDict) -> list[int]:
  """The steps of each train-step call after step `start`: config.steps_per_call, cut short at
  each step that logs, evaluates or saves on schedule (so a resume from any checkpoint, at a
  call's end, makes the calls the uninterrupted run made)."""
  sizes, step = [], start
  every = (config.log_every, config.eval_every, config.checkpoint.every)
  while step < config.num_steps:
    n = min(config.steps_per_call, config.num_steps - step, *(e - step % e for e in every))
    sizes.append(n)
    step += n
  return sizes


def test_last_and_best(run: Setup, manager, state, config, workdir: str) -> tuple[dict, dict]:
  """The test split on the last state, and the best checkpoint by validation `best_metric` with
  its validation and test metrics: the only reads of the test split."""
  test = evaluate(run.eval_step, state, run.eval_batches["test"](), run.task)
  # None: no checkpoint holds metrics (all written before `best` was tracked, 2026-11-27).
  best_step = manager.best_step() or config.num_steps
  best_test = test
  if best_step != config.num_steps:
    best_state = checkpoint.restore(manager, best_step, run.abstract_state)[0]
    best_test = evaluate(run.eval_step, best_state, run.eval_batches["test"](), run.task)
  validation = [r for r in log.read_metrics(workdir)
                if r["split"] == "validation" and r["step"] == best_step]
  return test, {"step": best_step,
                "validation": run_dir.metrics_of(validation[-1], step=False) if validation else {},
                "test": best_test}


def print_summary(run: Setup, config, workdir: str, start: int, num_params: int) -> None:
  if start:
    print(f"Resumed from step {start} of {workdir}")
  summary = nn.tabulate(run.model, jax.random.PRNGKey(0), depth=1,
                        console_kwargs={"force_terminal": False, "width": 100})
  print(summary(run.x_example, train=False))
  print(f"{config.model.name}: {num_params:,} parameters; {config.dataset.name} "
        f"({', '.join(f'{r}: {s}' for r, s in run.splits.items())}); {config.num_steps} steps of "
        f"batch {config.batch_size} on {jax.device_count()} x {jax.devices()[0].device_kind} "
        f"(mesh {dict(run.mesh.shape)})")


def check_model_fits_data(config: ml_collections.ConfigDict, spec: data.DatasetSpec,
                          num_outputs: int | None) -> None:
  """The best-checkpoint metric must be one the task has; the model's output size and input
  vocabulary must be the dataset's (for text, at least the dataset's: a vocabulary padded to a
  multiple of 64, as GPT-2's 50257 -> 50304, runs faster). `num_outputs` None: not known yet (a
  text's vocabulary or a label's classes, read from the data), checked again once it is."""
  metrics = spec.metrics
  if config.checkpoint.best_metric not in metrics:
    raise ConfigError(f"config.checkpoint.best_metric={config.checkpoint.best_metric!r} is not a "
                      f"metric of {config.dataset.name!r}; valid: {', '.join(metrics)}")
  wanted = {"num_outputs": num_outputs, "vocab_size": num_outputs if spec.text else spec.vocab_size}
  for field, value in wanted.items():
    if value is None or field not in config.model or config.model[field] == value:
      continue
    if not (spec.text and config.model[field] > value):
      raise ConfigError(f"config.model.{field}={config.model[field]} but {config.dataset.name!r} "
                        f"needs {value}{' (or more)' if spec.text else ''}")
