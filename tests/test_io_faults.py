"""Faults of the disk and the workdir: failed writes end the run at once (and the same command
resumes), one run per workdir, torn files and damaged checkpoint metadata, Ctrl-C before the
first step. Failures are injected by tests/faults_injection.py."""
import errno
import json
import os
import signal
import shutil
import subprocess
import sys
import time

import pytest

from tests.faults_injection import failing_writes
from tests.kill_harness import REPO, assert_same_run
from tests.test_train import cli_args
from train import checkpoint, faults, workdir as run_dir
from train.config import ConfigError
from train.loop import train_and_evaluate
from train.tools import report

TINY = ("--config.num_steps=30", "--config.log_every=5", "--config.eval_every=10",
        "--config.checkpoint.every=10")


@pytest.fixture(scope="module")
def finished(tiny_config, tmp_path_factory):
  """A finished 20-step MLP run: (config, its workdir)."""
  config = tiny_config("mnist1d_mlp", num_steps=20)
  workdir = tmp_path_factory.mktemp("finished") / "run"
  train_and_evaluate(config, str(workdir))
  return config, workdir


def as_crashed_after_step_10(finished, workdir):
  shutil.copytree(finished[1], workdir)
  os.remove(workdir / "results.json")
  shutil.rmtree(workdir / "checkpoints" / "20")


def injected(data_dir, workdir, *fault, timeout=120):
  """`python -m train` under a fault of tests/faults_injection.py: (process, seconds)."""
  t = time.time()
  proc = subprocess.run([sys.executable, "-m", "tests.faults_injection", *fault, "--",
                         *cli_args(data_dir, workdir, "mnist1d_mlp", *TINY)],
                        cwd=REPO, capture_output=True, text=True, timeout=timeout)
  return proc, time.time() - t


@pytest.mark.slow
def test_a_full_disk_under_the_checkpoints_ends_the_run_and_the_same_command_resumes(
    data_dir, tmp_path):
  """ENOSPC from step 15 on: the save in flight or the next one fails; exit 74 within seconds,
  one line naming the path and the last good checkpoint, which is kept; then the disk is
  "freed" and the same command finishes the run."""
  workdir = tmp_path / "run"
  bad, seconds = injected(data_dir, workdir, f"--under={workdir / 'checkpoints'}",
                          "--errno=ENOSPC", "--from_step=15")
  assert bad.returncode == faults.IO_EXIT_STATUS, bad.stderr[-3000:]
  last = bad.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: cannot write {workdir / 'checkpoints'}/"), bad.stderr[-3000:]
  assert ": No space left on device; " in last
  good = checkpoint.last_good_step(str(workdir))
  assert (f"the last good checkpoint is step {good} in {workdir / 'checkpoints'}, kept as it is"
          if good else "there is no checkpoint yet") in last
  assert seconds < 60
  ok = subprocess.run([sys.executable, "-m", "train", *cli_args(data_dir, workdir, "mnist1d_mlp",
                                                                *TINY)],
                      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr[-3000:]
  assert json.loads((workdir / "results.json").read_text())["resumed_from_step"] == (good or 0)


def test_a_dead_tensorboard_writer_does_not_hang_the_run(data_dir, tmp_path):
  """EACCES on the TensorBoard event file from step 12: tensorboardX's writer thread died and the
  loop then blocked forever in add_scalar; now exit 74 at once, naming the file."""
  workdir = tmp_path / "run"
  bad, seconds = injected(data_dir, workdir, f"--under={workdir / 'tensorboard'}",
                          "--errno=EACCES", "--from_step=12", timeout=90)
  assert bad.returncode == faults.IO_EXIT_STATUS and seconds < 60, bad.stderr[-3000:]
  assert bad.stderr.strip().splitlines()[-1].startswith(
      f"error: cannot write {workdir / 'tensorboard'}/events.out.tfevents."), bad.stderr[-3000:]


def test_an_unwritable_metrics_file_keeps_every_checkpoint(tiny_config, tmp_path):
  config = tiny_config("mnist1d_mlp")
  with failing_writes(tmp_path / "metrics.jsonl", errno.EACCES, from_step=12) as fault:
    with pytest.raises(faults.WriteFailed, match=(
        rf"^cannot write {tmp_path / 'metrics.jsonl'}: Permission denied; the last good "
        rf"checkpoint is step 10 in {tmp_path / 'checkpoints'}, kept as it is. Fix the cause")):
      train_and_evaluate(config, str(tmp_path))
  assert fault["failed"] and sorted(os.listdir(tmp_path / "checkpoints")) == ["10"]


def test_a_second_run_on_a_locked_workdir_is_refused_naming_the_holder(tiny_config, tmp_path):
  os.makedirs(tmp_path / "run")
  with run_dir.locked(str(tmp_path / "run")):
    with pytest.raises(ConfigError, match=rf"^workdir '{tmp_path / 'run'}' is in use by pid "
                       rf"{os.getpid()} on \S+ since 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d; wait for "
                       "that run to end or use another --workdir$"):
      train_and_evaluate(tiny_config("mnist1d_mlp"), str(tmp_path / "run"))
    assert os.listdir(tmp_path / "run") == ["lock"]
  with run_dir.locked(str(tmp_path / "run")):  # released: free again
    pass


def test_a_second_sweep_on_a_locked_parent_is_refused(tiny_config, tmp_path):
  from train import sweep
  os.makedirs(tmp_path / "sweep")
  with run_dir.locked(str(tmp_path / "sweep")):
    with pytest.raises(ConfigError, match=rf"is in use by pid {os.getpid()} "):
      sweep.run(tiny_config("mnist1d_mlp"), str(tmp_path / "sweep"), ["seed=0,1"])
  assert os.listdir(tmp_path / "sweep") == ["lock"]


def test_resume_drops_a_torn_metrics_line_and_reads_the_config_from_the_checkpoint(
    finished, tmp_path, capfd):
  config, ref_dir = finished
  workdir = tmp_path / "run"
  as_crashed_after_step_10(finished, workdir)
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"step": 17, "split": "tr')
  os.truncate(workdir / "config.json", 100)
  capfd.readouterr()
  assert train_and_evaluate(config, str(workdir))["resumed_from_step"] == 10
  err = capfd.readouterr().err
  assert f"Warning: dropped the torn last line of {workdir / 'metrics.jsonl'}" in err
  assert (f"Warning: {workdir / 'config.json'} is unreadable (JSONDecodeError); using the config "
          "stored in the checkpoint of step 10") in err
  assert_same_run(ref_dir, workdir)
  assert json.loads((workdir / "config.json").read_text())["num_steps"] == 20  # rewritten whole


def test_sample_reads_a_run_whose_config_json_is_truncated(finished, tmp_path):
  shutil.copytree(finished[1], tmp_path / "run")
  os.truncate(tmp_path / "run" / "config.json", 10)
  config, model, variables, step = checkpoint.load_for_inference(str(tmp_path / "run"))
  assert config.model.name == "mlp" and step == 20 and "params" in variables


def test_report_skips_and_names_a_damaged_run(finished, tmp_path, capsys):
  for name in ("good", "bad"):
    shutil.copytree(finished[1], tmp_path / name)
  os.truncate(tmp_path / "bad" / "results.json", 20)
  report.main([str(tmp_path), "--no-plot"])
  out, err = capsys.readouterr()
  assert f"warning: skipped {tmp_path / 'bad'}: JSONDecodeError" in err
  assert "good" in out and "bad" not in out


@pytest.mark.parametrize("content", ["", "{}", "null"])
def test_damaged_progress_metadata_falls_back_to_the_previous_checkpoint(finished, tmp_path, capfd,
                                                                         content):
  config, ref_dir = finished
  workdir = tmp_path / "run"
  shutil.copytree(ref_dir, workdir)
  os.remove(workdir / "results.json")
  (workdir / "checkpoints" / "20" / "progress" / "metadata").write_text(content)
  capfd.readouterr()
  assert train_and_evaluate(config, str(workdir))["resumed_from_step"] == 10
  assert "Warning: the checkpoint at step 20 is unreadable" in capfd.readouterr().err
  assert os.path.isdir(workdir / "checkpoints.corrupt" / "20")
  assert_same_run(ref_dir, workdir)


@pytest.mark.parametrize("signum,what", [(signal.SIGINT, "Ctrl-C"),
                                          pytest.param(signal.SIGTERM, "SIGTERM",
                                                       marks=pytest.mark.slow)])
def test_a_signal_while_the_initial_state_compiles_is_one_line(data_dir, tmp_path, signum, what):
  """Nothing to checkpoint yet: exit 128 + the signal with one line, no traceback (it was a
  KeyboardInterrupt, which a callback of jax's could swallow, or a segfault of the interpreter's
  shutdown beside XLA's threads; SIGTERM ended the process without a word); the re-run trains."""
  workdir = tmp_path / "run"
  bad, _ = injected(data_dir, workdir, "--signal_in_init", signum.name)
  assert bad.returncode == 128 + signum, bad.stderr[-3000:]
  assert bad.stderr.strip().splitlines() == [
      f"interrupted: {what} before training started or after it ended (nothing to checkpoint), "
      f"or a second {what}; run the same command again to start or resume"]
  assert checkpoint.last_good_step(str(workdir)) is None


@pytest.mark.slow  # a CLI process
def test_a_second_ctrl_c_in_training_stops_at_once_in_one_line(data_dir, tmp_path):
  bad, _ = injected(data_dir, tmp_path / "run", "--ctrl_c_twice_in_training")
  assert bad.returncode == 130, bad.stderr[-3000:]
  lines = [line for line in bad.stderr.splitlines() if line.strip()]
  assert lines[-2].startswith("SIGINT: stopping after this step") and lines[-1] == (
      "interrupted: Ctrl-C before training started or after it ended (nothing to checkpoint), or "
      "a second Ctrl-C; run the same command again to start or resume")
