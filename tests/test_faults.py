"""Faults: kills (mid-run and mid-save), preemption, corrupt checkpoints and NaN/Inf. Each run must
end bit-identical to an uninterrupted one, or stop with the step named and the last good checkpoint
kept."""
import dataclasses
import os
import shutil
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train.loop
from tests import kill_harness
from tests.kill_harness import assert_same_run, final_state, metric_rows
from train import faults
from tests.test_train import cli, cli_args, snapshot
from train.config import ConfigError
from train.faults import TrainingDiverged
from train.loop import train_and_evaluate


@pytest.fixture(scope="module")
def reference(tiny_config, tmp_path_factory):
  """An uninterrupted tiny CNN run (BatchNorm, dropout, AdamW, warm-up + cosine): (config, dir)."""
  config = tiny_config("mnist1d_cnn", **{"model.dropout": 0.1})
  workdir = tmp_path_factory.mktemp("reference") / "run"
  train_and_evaluate(config, str(workdir))
  return config, workdir


def steps_wrapped(monkeypatch, before_step):
  """Makes the loop's train step call `before_step(step being made, batch)` first; its return value,
  if not None, replaces the batch."""
  make_setup = train.loop.setup

  def setup(config):
    run = make_setup(config)

    def wrapped(state, batch):
      changed = before_step(int(state.step) + 1, batch)
      return run.train_step(state, batch if changed is None else changed)

    return dataclasses.replace(run, train_step=wrapped)

  monkeypatch.setattr(train.loop, "setup", setup)


def checkpoint_steps(workdir):
  return sorted(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())


def as_killed_after(ref_dir, workdir, step):
  """`workdir` as a copy of the finished `ref_dir` would be had it been killed after saving `step`."""
  shutil.copytree(ref_dir, workdir, dirs_exist_ok=True)
  os.remove(workdir / "results.json")
  for later in [s for s in checkpoint_steps(workdir) if s > step]:
    shutil.rmtree(workdir / "checkpoints" / str(later))


@pytest.mark.slow  # five interrupted training processes: `make test-slow`
def test_kill_harness_reduced(data_dir, tmp_path):
  """SIGKILL at a random step, SIGKILL during a checkpoint write, SIGTERM, a second run refused by
  the lock (then SIGKILL), SIGKILL leaving torn metrics.jsonl and config.json; then resume to
  the end."""
  events = kill_harness.run(kills=5, steps=150, every_s=0.3, seed=0, data_dir=data_dir,
                            out=str(tmp_path))
  assert [e.split()[0] for e in events] == ["step", "save", "term", "lock", "torn"]
  assert "(left the partial" in events[1] and ".orbax-checkpoint-tmp)" in events[1]  # mid-save
  assert "(a second run refused)" in events[3] and "torn metrics.jsonl" in events[4]


def test_sigterm_checkpoints_the_step_and_the_rerun_is_exact(reference, tmp_path, monkeypatch):
  """Step 23 is between host syncs (every 5) and checkpoints (every 10): its unlogged train
  metrics go into the checkpoint, so even metrics.jsonl ends identical. (SIGINT takes the same
  path: see test_second_ctrl_c_interrupts_at_once and the kill harness's `int` kills.)"""
  config, ref_dir = reference
  signum = signal.SIGTERM
  previous = signal.getsignal(signum)
  steps_wrapped(monkeypatch, lambda step, batch: os.kill(os.getpid(), signum)
                if step == 23 else None)
  with pytest.raises(faults.Preempted, match=f"stopped by {signum.name} after step 23, which is "
                     "checkpointed; run the same command again to resume"):
    train_and_evaluate(config, str(tmp_path))
  assert signal.getsignal(signum) is previous
  assert checkpoint_steps(tmp_path)[-1] == 23
  monkeypatch.undo()
  assert train_and_evaluate(config, str(tmp_path))["resumed_from_step"] == 23
  assert_same_run(ref_dir, tmp_path)


@pytest.mark.slow  # three runs, each step in a lax.scan (slow on XLA:CPU for convs): test-slow
@pytest.mark.parametrize("on_device", [True, False], ids=["device_split", "host_batches"])
def test_calls_of_several_steps_resume_exactly(reference, tmp_path, monkeypatch, on_device):
  """config.steps_per_call=4 with log_every=5 makes calls of steps 1-4, 5, 6-9, 10, ...: a
  SIGTERM during the call of steps 6-9 saves step 9 with that call's unlogged metrics, and the
  rerun ends bit-identical to an uninterrupted run of the same config; both stay close to one
  step per call (the same math, but XLA compiles the scanned step on its own)."""
  one_per_call, one_dir = reference
  config = one_per_call.copy_and_resolve_references()
  config.steps_per_call, config.dataset.on_device = 4, on_device
  whole, cut = tmp_path / "whole", tmp_path / "cut"
  train_and_evaluate(config, str(whole))
  advance = train.loop.log.Logger.advance

  def sigterm_in_the_call_of_steps_6_to_9(logger, steps=1):
    advance(logger, steps)
    if logger.bar.n == 9:  # the call has been dispatched, the loop has not looked at the signal
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(train.loop.log.Logger, "advance", sigterm_in_the_call_of_steps_6_to_9)
  with pytest.raises(faults.Preempted, match="after step 9, which is checkpointed"):
    train_and_evaluate(config, str(cut))
  assert checkpoint_steps(cut)[-1] == 9
  monkeypatch.undo()
  assert train_and_evaluate(config, str(cut))["resumed_from_step"] == 9
  assert_same_run(whole, cut)
  os.remove(cut / "results.json")  # as if killed after the last checkpoint: no call left to make
  assert train_and_evaluate(config, str(cut))["resumed_from_step"] == config.num_steps
  assert_same_run(whole, cut)
  rows, one_rows = metric_rows(whole), metric_rows(one_dir)
  assert [(r["step"], r["split"]) for r in rows] == [(r["step"], r["split"]) for r in one_rows]
  for row, one in zip(rows, one_rows):
    np.testing.assert_allclose(row["loss"], one["loss"], rtol=1e-3)


@pytest.mark.slow  # two runs' ends: `make test-slow`
def test_a_signal_while_the_last_checkpoint_is_written_stops_before_the_test(reference, tmp_path,
                                                                             monkeypatch):
  """(It printed "stopping after this step, with a checkpoint", then tested and exited 0.)"""
  config, ref_dir = reference
  as_killed_after(ref_dir, tmp_path, config.num_steps - 10)  # so the run ends here in 10 steps
  wait, signals = train.loop.checkpoint.wait, [signal.SIGTERM]  # one, at the loop's wait
  monkeypatch.setattr(train.loop.checkpoint, "wait", lambda manager: (
      signals and os.kill(os.getpid(), signals.pop()), wait(manager)))
  with pytest.raises(faults.Preempted, match=f"after step {config.num_steps}, which is "
                     "checkpointed; run the same command again to test it"):
    train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "results.json")
  monkeypatch.undo()
  assert train_and_evaluate(config, str(tmp_path))["resumed_from_step"] == config.num_steps
  assert_same_run(ref_dir, tmp_path)


def test_second_ctrl_c_interrupts_at_once():
  # Python's own Ctrl-C handler as the one before ours (a test worker may have set another).
  outer = signal.signal(signal.SIGINT, signal.default_int_handler)
  preemption = faults.Preemption().install()
  try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    assert preemption.requested and preemption.name == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  finally:
    preemption.uninstall()
    signal.signal(signal.SIGINT, outer)


@pytest.mark.slow  # a training run or two: `make test-slow`
def test_time_based_checkpoints_resume_between_syncs_exactly(reference, tmp_path, monkeypatch):
  """checkpoint.every_s: with a tiny interval every step is saved, so a crash at step 27 (of a run
  resumed from step 20) resumes from step 26, mid-way between host syncs."""
  config, ref_dir = reference
  config = config.copy_and_resolve_references()
  config.checkpoint.every_s = 1e-9
  as_killed_after(ref_dir, tmp_path, 20)

  def crash(step, batch):
    if step == 27:
      raise KeyboardInterrupt

  steps_wrapped(monkeypatch, crash)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(config, str(tmp_path))
  assert checkpoint_steps(tmp_path)[-1] == 26
  monkeypatch.undo()
  assert train_and_evaluate(config, str(tmp_path))["resumed_from_step"] == 26
  assert_same_run(ref_dir, tmp_path)


def largest_file(path):
  files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
  return max(files, key=os.path.getsize)


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous(reference, tmp_path, capfd, damage):
  config, ref_dir = reference
  as_killed_after(ref_dir, tmp_path, 30)
  assert checkpoint_steps(tmp_path)[-2:] == [20, 30]
  victim = largest_file(tmp_path / "checkpoints" / "30" / "state")
  if damage == "truncate":
    os.truncate(victim, os.path.getsize(victim) // 2)
  else:
    os.remove(victim)
  capfd.readouterr()
  assert train_and_evaluate(config, str(tmp_path))["resumed_from_step"] == 20
  err = capfd.readouterr().err
  assert "Warning: the checkpoint at step 30 is unreadable" in err
  assert ("Warning: moved the unreadable checkpoint of step 30 to "
          f"{tmp_path / 'checkpoints.corrupt' / '30'}") in err
  assert os.path.isdir(tmp_path / "checkpoints.corrupt" / "30")
  assert_same_run(ref_dir, tmp_path)


def test_a_torn_metrics_file_costs_only_the_checkpoints_rank(reference, tmp_path, capfd):
  """orbax reads every checkpoint's metrics/metrics (its validation metrics, for the best) when a
  manager opens; a torn one used to stop the resume with a JSONDecodeError traceback."""
  config, ref_dir = reference
  as_killed_after(ref_dir, tmp_path, 30)
  torn = tmp_path / "checkpoints" / "30" / "metrics" / "metrics"
  os.truncate(torn, os.path.getsize(torn) // 2)
  capfd.readouterr()
  assert train_and_evaluate(config, str(tmp_path))["resumed_from_step"] == 30
  assert f"Warning: removed the unreadable {torn} (JSONDecodeError)" in capfd.readouterr().err
  assert_same_run(ref_dir, tmp_path)


@pytest.mark.slow  # a subprocess run: `make test-slow`
def test_unscheduled_saves_print_no_warning_of_missing_metrics(data_dir, tmp_path):
  """Time-based saves carry no validation metrics, so they are never the best; orbax warns of
  each such save on stderr (absl's handler, as a command sets it up; hundreds in a long run)
  unless filtered."""
  done = cli(*cli_args(data_dir, tmp_path / "run", "mnist1d_mlp", "--config.num_steps=10",
                       "--config.checkpoint.every_s=1e-9"))
  assert done.returncode == 0, done.stderr[-2000:]
  assert "did not provide metrics" not in done.stderr


def test_no_readable_checkpoint_is_an_error_that_moves_nothing(tiny_config, tmp_path):
  config = tiny_config("mnist1d_mlp", num_steps=20)
  train_and_evaluate(config, str(tmp_path))
  for step in checkpoint_steps(tmp_path):
    os.remove(largest_file(tmp_path / "checkpoints" / str(step) / "state"))
  before = snapshot(tmp_path)
  with pytest.raises(ConfigError, match=r"none of the checkpoints in .* can be read \(steps 20, "
                     r"10\); move that directory away to start afresh"):
    train_and_evaluate(config, str(tmp_path))
  assert snapshot(tmp_path) == before


def nan_at(bad_step):
  return lambda step, batch: {**batch, "x": batch["x"] * jnp.nan} if step == bad_step else None


@pytest.mark.parametrize("experiment", ["mnist1d_mlp", "mnist1d_cnn"])  # the CNN: BatchNorm
def test_nonfinite_skip_drops_the_update_and_counts_it(tiny_config, tmp_path, monkeypatch,
                                                       experiment):
  config = tiny_config(experiment, nonfinite="skip")
  steps_wrapped(monkeypatch, nan_at(8))
  results = train_and_evaluate(config, str(tmp_path))
  train_rows = {r["step"]: r for r in metric_rows(tmp_path) if r["split"] == "train"}
  assert [r["skipped"] for r in train_rows.values()] == [0, 1, 0, 0, 0, 0]
  assert all(np.isfinite(r["loss"]) for r in train_rows.values())
  assert np.isfinite(results["final"]["loss"])
  state = final_state(tmp_path)
  assert int(state["opt_state"]["total_notfinite"]) == 1  # optax.apply_if_finite's own count
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["batch_stats"]))


def test_nonfinite_stop_names_the_step_and_the_parameter(tiny_config, tmp_path, monkeypatch):
  config = tiny_config("mnist1d_mlp")
  steps_wrapped(monkeypatch, nan_at(8))
  with pytest.raises(TrainingDiverged, match=r"^loss became nan at step 8 \(checked at step 10\); "
                     r"first non-finite in the state: params/Dense_0/kernel; the latest checkpoint "
                     r"\(step none\) is untouched"):
    train_and_evaluate(config, str(tmp_path))
  assert checkpoint_steps(tmp_path) == []


def test_a_nonfinite_state_never_replaces_the_last_checkpoint(tiny_config, tmp_path, monkeypatch):
  """Time-based saves come between host syncs: the state itself is checked before each save."""
  config = tiny_config("mnist1d_mlp", **{"checkpoint.every_s": 1e-9})
  steps_wrapped(monkeypatch, nan_at(23))
  with pytest.raises(TrainingDiverged, match=r"^params/Dense_0/kernel is non-finite at step 23, so "
                     r"it is not checkpointed; the latest checkpoint \(step 22\) is untouched"):
    train_and_evaluate(config, str(tmp_path))
  assert checkpoint_steps(tmp_path)[-1] == 22
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(final_state(tmp_path)["params"]))


def test_nonfinite_skip_stops_when_the_optimizer_gives_up(tiny_config, tmp_path):
  config = tiny_config("mnist1d_mlp", nonfinite="skip", max_nonfinite_skips=2,
                       **{"optimizer.lr": 1e30})
  with pytest.raises(TrainingDiverged, match=r"^params/\S+ became non-finite between steps 1 and 5"):
    train_and_evaluate(config, str(tmp_path))
