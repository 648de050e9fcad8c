"""End to end: a tiny run writes its workdir; resumes are exact; user errors are one line."""
import json
import os
import time
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

import train.checkpoint
import train.loop
import train.workdir
from tests.conftest import load_config
from tests.kill_harness import REPO, assert_same_run, metric_rows
from train.config import ConfigError
from train.loop import TrainingDiverged, train_and_evaluate


def test_run_writes_the_workdir_and_learns(tiny_config, tmp_path):
  config = tiny_config("mnist1d_cnn_paper", num_steps=300, eval_every=100, log_every=50,
                       **{"checkpoint.every": 100, "checkpoint.keep": 1})
  results = train_and_evaluate(config, str(tmp_path))
  files = set(os.listdir(tmp_path))
  assert {"config.json", "metrics.jsonl", "results.json", "curves.png", "checkpoints",
          "tensorboard"} <= files
  assert os.listdir(tmp_path / "tensorboard")
  assert results["num_params"] == 5210 and results["final"]["step"] == 300
  assert results["final"]["accuracy"] > 0.5  # chance is 0.1
  assert set(results["versions"]) >= {"jax", "flax", "optax", "orbax-checkpoint"}
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["model"]["features"] == [25, 25, 25]
  rows = metric_rows(tmp_path)
  assert {r["split"] for r in rows} == {"train", "validation", "test"}
  assert results["splits"] == {"train": "train", "validation": "validation", "test": "test"}
  # Model selection reads validation only; test is read once, at the end.
  assert [r["step"] for r in rows if r["split"] == "validation"] == [100, 200, 300]
  assert [r["step"] for r in rows if r["split"] == "test"] == [300]
  # keep=1 latest, plus the best by validation accuracy, whose test metrics are reported apart.
  validation = [r for r in rows if r["split"] == "validation"]
  best = max(validation, key=lambda r: r["accuracy"])
  assert sorted(int(s) for s in os.listdir(tmp_path / "checkpoints")) == sorted({best["step"], 300})
  assert results["best"]["step"] == best["step"]
  assert results["best"]["validation"]["accuracy"] == best["accuracy"]
  assert results["validation"]["accuracy"] == validation[-1]["accuracy"]
  assert results["final"]["accuracy"] != results["validation"]["accuracy"]  # another split
  assert set(results["best"]["test"]) == {"loss", "accuracy"}
  if best["step"] == 300:
    assert results["best"]["test"] == {k: v for k, v in results["final"].items() if k != "step"}


def test_the_best_checkpoint_is_chosen_by_validation_and_survives_a_resume(tmp_path):
  """Validation accuracy falls after step 5: step 5 stays the best, kept beside the latest
  (keep=1) and reported as best, also by the manager of a resumed run (checkpoints without a
  metric, the unscheduled ones, are never the best)."""
  cfg = ml_collections.ConfigDict({"keep": 1, "best_metric": "accuracy", "best_mode": "max"})
  config = ml_collections.ConfigDict({"seed": 0})

  def save(manager, step, accuracy):
    train.checkpoint.save(manager, step, {"w": np.full(3, step, np.float32)},
                          {"data_iterator": {}, "wall_time_s": 0.0}, config,
                          None if accuracy is None else {"accuracy": accuracy})

  manager = train.checkpoint.open_manager(str(tmp_path), cfg)
  for step, accuracy in [(5, 0.9), (10, 0.2), (15, 0.3), (17, None)]:
    save(manager, step, accuracy)
  train.checkpoint.wait(manager)
  assert (manager.all_steps(), manager.best_step()) == ([5, 17], 5)
  train.checkpoint.close(manager)
  manager = train.checkpoint.open_manager(str(tmp_path), cfg)  # a resume reads the metrics back
  assert (manager.all_steps(), manager.best_step()) == ([5, 17], 5)
  for step, accuracy, kept, best in [(20, 0.1, [5, 20], 5), (25, 0.95, [25], 25),
                                     (30, 0.5, [25, 30], 25)]:
    save(manager, step, accuracy)
    train.checkpoint.wait(manager)
    assert (manager.all_steps(), manager.best_step()) == (kept, best), step
  train.checkpoint.close(manager)


def test_resume_after_a_crash_is_exact(tiny_config, tmp_path, monkeypatch):
  """Crash at step 25 (checkpoints at 10, 20): the re-run resumes from 20 and ends identical.
  The default CNN has BatchNorm statistics, AdamW moments and a warm-up + cosine schedule; its
  dropout makes the RNG matter too."""
  config = tiny_config("mnist1d_cnn", **{"model.dropout": 0.1})
  train_and_evaluate(config, str(tmp_path / "a"))

  advance = train.loop.log.Logger.advance

  def crash_at_step_25(logger, steps=1):
    advance(logger, steps)
    if logger.bar.n == 25:
      raise KeyboardInterrupt

  monkeypatch.setattr(train.loop.log.Logger, "advance", crash_at_step_25)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(config, str(tmp_path / "b"))
  monkeypatch.undo()
  assert not os.path.exists(tmp_path / "b" / "results.json")
  results = train_and_evaluate(config, str(tmp_path / "b"))
  assert results["resumed_from_step"] == 20
  assert_same_run(tmp_path / "a", tmp_path / "b")


def cli(*args, **kwargs):
  return subprocess.run([sys.executable, "-m", "train", *args], cwd=REPO, capture_output=True,
                        text=True, **kwargs)


def cli_args(data_dir, workdir, experiment="mnist1d_mlp", *overrides):
  return (f"--config=experiments/{experiment}.py", f"--workdir={workdir}",
          f"--config.dataset.data_dir={data_dir}", *overrides)


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
  """(data_dir, workdir) of a finished 20-step MLP run, made once for the module."""
  workdir = tmp_path_factory.mktemp("finished") / "run"
  ok = cli(*cli_args(data_dir, workdir, "mnist1d_mlp", "--config.num_steps=20"))
  assert ok.returncode == 0, ok.stderr
  return data_dir, workdir


def snapshot(path):
  """Every file's mtime, but the lock's, which each run (even a refused one) takes and rewrites."""
  return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
          for d, _, files in os.walk(path) for f in files if f != train.workdir.LOCK}


SLOW = pytest.mark.slow  # a CLI process each; one case of each kind stays in make test


@pytest.mark.parametrize("overrides, message", [
    (["--config.batch_sise=3"], "batch_sise"),
    pytest.param(["--config.optimizr.lr=1"], "error: --config.optimizr.lr: the config has no "
                 "field 'optimizr' (did you mean 'optimizer'?)", marks=SLOW),
    pytest.param(["--config.batch_size=abc"], "batch_size", marks=SLOW),
    (["--config.dataset.name=adding_problem/t300"], "unknown config.dataset.name 'adding_problem/t300' (did you mean 'adding_problem/t400'?); valid: adding_problem/t10"),
    pytest.param(["--config.optimizer.momentum=1.5"], "config.optimizer.momentum=1.5 must be in [0, 1)", marks=SLOW),
    (["--config.optimizer.lr=0.1"], "already finished with another config (differing: optimizer.lr)"),
    pytest.param(["--config.num_steps=10"], "holds a checkpoint at step 20, past config.num_steps=10", marks=SLOW),
    (["--config.model.name=vgg"], "unknown config.model.name 'vgg'; valid: convnet, mlp, "),
    pytest.param(["--config.dataset.name=mnist1"], "unknown config.dataset.name 'mnist1' (did you mean 'mnist1d'?)", marks=SLOW),
    (["--config.model.hidden=(7,)", "--config.num_steps=40"], "params/Dense_0/kernel is (40, 100) in the checkpoint, (40, 7) in the config"),
    pytest.param(["--config.optimizer.lr=-1.0"], "config.optimizer.lr=-1.0 must be > 0", marks=SLOW),
    pytest.param(["--config.dataset.train_split=trian"], "unknown config.dataset.train_split of 'mnist1d' 'trian' (did you mean 'train'?); valid: test, train, validation", marks=SLOW),
    (["--config.dataset.name=mnist", "--config.dataset.download=False", "--config.dataset.data_dir=/nonexistent/tfds"],
     "'mnist' is not prepared in /nonexistent/tfds and config.dataset.download=False: prepare it with `tfds build mnist --data_dir=/nonexistent/tfds --file_format=array_record`"),
])
def test_user_errors_are_one_line_and_touch_nothing(finished_run, tmp_path, overrides, message):
  assert_one_line_error(finished_run, tmp_path, overrides, message)


@pytest.mark.parametrize("field, value, message", [
    ("nonfinite", "skipp", "unknown config.nonfinite 'skipp' (did you mean 'skip'?); valid: stop, skip"),
    ("checkpoint.every_s", -1.0, "config.checkpoint.every_s=-1.0 must be >= 0"),
    ("max_nonfinite_skips", -1, "config.max_nonfinite_skips=-1 must be >= 0"),
])
def test_fault_handling_fields_are_checked_first(tiny_config, tmp_path, field, value, message):
  with pytest.raises(ConfigError) as e:
    train_and_evaluate(tiny_config("mnist1d_mlp", **{field: value}), str(tmp_path / "run"))
  assert str(e.value) == message
  assert not (tmp_path / "run").exists()


def test_batch_not_divisible_by_the_devices(finished_run, tmp_path):
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  assert_one_line_error(finished_run, tmp_path, ["--config.batch_size=99"],
                        "config.batch_size=99 must be divisible by the 2 devices x config.grad_accum_steps=1", env=env)


def test_full_disk_is_one_line_and_touches_nothing(finished_run, tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  shutil.copytree(finished_run[1], workdir)
  before = snapshot(workdir)
  monkeypatch.setattr(train.checkpoint.shutil, "disk_usage",
                      lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 10**5, 10**5))
  config = load_config("mnist1d_mlp")
  config.dataset.data_dir, config.num_steps = finished_run[0], 20
  with pytest.raises(ConfigError, match=r"^workdir '.*' has 0.1 MiB free; its checkpoints need "
                     r"about 0.7 MiB \(checkpoint.keep=2, the best one and one being written\)$"):
    train_and_evaluate(config, str(workdir))
  assert snapshot(workdir) == before


def assert_one_line_error(finished_run, tmp_path, overrides, message, env=None):
  """The CLI on a copy of a finished run: exit 2, one line holding `message`, the copy untouched."""
  data_dir, workdir = finished_run[0], tmp_path / "run"
  shutil.copytree(finished_run[1], workdir)
  before = snapshot(workdir)
  bad = cli(*cli_args(data_dir, workdir, "mnist1d_mlp", "--config.num_steps=20", *overrides),
            env=env)
  assert bad.returncode == 2
  lines = bad.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), bad.stderr
  assert message in lines[0]
  assert "Traceback" not in bad.stderr and "Traceback" not in bad.stdout
  assert snapshot(workdir) == before


@pytest.mark.parametrize("content, message", [
    (None, "error: cannot load --config:"),
    ("def get_config(:\n", "error: SyntaxError: invalid syntax"),
])
def test_missing_or_broken_config_file_is_one_line(tmp_path, content, message):
  path = tmp_path / "exp.py"
  if content is not None:
    path.write_text(content)
  bad = cli(f"--config={path}", f"--workdir={tmp_path / 'run'}")
  lines = bad.stderr.strip().splitlines()
  assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), bad.stderr
  assert not (tmp_path / "run").exists()


def test_unwritable_workdir_is_one_line(data_dir, tmp_path):
  (tmp_path / "file").write_text("")
  bad = cli(*cli_args(data_dir, tmp_path / "file" / "run", "mnist1d_mlp"))
  assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
      f"error: cannot write to workdir '{tmp_path / 'file' / 'run'}': Not a directory"]


@pytest.mark.slow  # a CLI run (the in-process divergence test stays in make test): make test-slow
def test_divergence_is_one_line_from_the_cli(data_dir, tmp_path):
  bad = cli(*cli_args(data_dir, tmp_path / "run", "mnist1d_mlp", "--config.num_steps=20",
                      "--config.optimizer.lr=1e30"))
  assert bad.returncode == 3
  last = bad.stderr.strip().splitlines()[-1]  # after the progress bar
  assert last.startswith("error: loss became nan at step 2 (checked at step 20); first non-finite "
                         "in the state: params/Dense_0/bias; the latest checkpoint (step none) is "
                         "untouched"), bad.stderr
  assert "Traceback" not in bad.stderr


def test_divergence_stops_with_the_step_and_keeps_the_checkpoint(tiny_config, tmp_path,
                                                                  monkeypatch):
  """A 40-step run crashed at step 21 (a finished run cannot be extended), resumed with a
  learning rate that diverges."""
  config = tiny_config("mnist1d_mlp", num_steps=40)
  advance = train.loop.log.Logger.advance

  def crash_at_step_21(logger, steps=1):
    advance(logger, steps)
    if logger.bar.n == 21:
      raise KeyboardInterrupt

  monkeypatch.setattr(train.loop.log.Logger, "advance", crash_at_step_21)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(config, str(tmp_path))
  monkeypatch.undo()
  before = os.listdir(tmp_path / "checkpoints")
  config = tiny_config("mnist1d_mlp", num_steps=40, **{"optimizer.lr": 1e30})
  with pytest.raises(TrainingDiverged, match=r"became (nan|inf) at step 2[1-5] \(checked at step 25\)"):
    train_and_evaluate(config, str(tmp_path))
  assert os.listdir(tmp_path / "checkpoints") == before


def test_config_errors_raise_before_any_work(tiny_config, tmp_path):
  config = tiny_config(**{"model.pool": "median"})
  with pytest.raises(ConfigError, match="config.model: unknown pool 'median'"):
    train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "config.json").exists()


def test_fields_added_since_a_run_count_only_off_their_default(tmp_path):
  from experiments.mnist1d_cnn import get_config
  config = get_config()
  old = json.loads(config.to_json_best_effort())
  del old["optimizer"]["grad_clip_norm"], old["model"]["dropout"]  # as if added to the code since
  (tmp_path / "config.json").write_text(json.dumps(old))
  assert train.workdir.config_changes(str(tmp_path), config) == []
  config.optimizer.grad_clip_norm, config.model.dropout = 1.0, 0.1
  assert train.workdir.config_changes(str(tmp_path), config) == ["model.dropout",
                                                              "optimizer.grad_clip_norm"]


def test_the_progress_bar_clock_starts_after_the_first_step(tmp_path):
  """The first step includes the compilation: the rate and ETA must not count it."""
  from train import log
  logger = log.Logger(str(tmp_path), start_step=10, num_steps=100)
  time.sleep(0.5)  # the compilation
  logger.advance()
  logger.advance()
  meter = logger.bar.format_dict
  assert meter["initial"] == 11 and meter["n"] == 12 and meter["elapsed"] < 0.25
  logger.close()


def test_calls_of_several_steps_end_where_the_loop_logs_evaluates_or_saves():
  config = load_config("mnist1d_cnn")
  config.update_from_flattened_dict({"num_steps": 12, "log_every": 5, "eval_every": 10,
                                     "checkpoint.every": 10, "steps_per_call": 4})
  assert train.loop.call_sizes(0, config) == [4, 1, 4, 1, 2]
  assert train.loop.call_sizes(9, config) == [1, 2]  # a resume from a call's end
  config.steps_per_call = 1
  assert train.loop.call_sizes(7, config) == [1] * 5


def test_a_calls_metrics_count_as_its_steps():
  """A call of several steps logs one row of [n] values: summaries, the step named on a NaN and
  a checkpoint's pending metrics count its steps one by one."""
  import jax.numpy as jnp
  from train import faults
  rows = [{"loss": jnp.float32(1.0), "grad_norm": jnp.float32(2.0)},  # a step
          {"loss": jnp.array([3.0, 5.0]), "grad_norm": jnp.array([2.0, float("nan")])}]  # a call
  state = {"w": jnp.ones(2)}
  assert faults.summarize(rows, 12, state, None, "skip") == {"loss": 2.0, "grad_norm": 2.0,
                                                              "skipped": 1}
  with pytest.raises(TrainingDiverged, match="grad_norm became nan at step 12 "):
    faults.summarize(rows, 12, state, None, "stop")
  packed = train.checkpoint.pack_metrics(rows)
  assert [r["loss"] for r in packed] == [[1.0, "float32"], [3.0, "float32"], [5.0, "float32"]]
  assert train.checkpoint.unpack_metrics(packed)[2]["grad_norm"].dtype == jnp.float32
