"""python -m train --config experiments/mnist1d_cnn.py --workdir runs/mnist1d_cnn [--config.seed=1]
  [--sweep seed=0,1,2 --sweep optimizer.lr=1e-3,3e-3]   (a sweep: train/sweep.py)

Every failure prints one line and exits with its own status:
  2   a user error (bad config, data dir or workdir, a workdir in use by another run, out of
      device memory), before any training;
  3   the loss or gradient norm turned NaN/Inf (the last checkpoint is untouched);
  74  a write failed (full disk, a folder turned read-only: EX_IOERR); the line names the path and
      the last good checkpoint, nothing good is deleted, and the same command resumes once fixed;
  75  SIGTERM or Ctrl-C during training: the step being trained is checkpointed (EX_TEMPFAIL,
      re-run to resume);
  130 Ctrl-C before training starts (imports, setup, data preparation, the first compile of the
      initial state) or after it ended (results being written), when there is nothing to
      checkpoint, or a second Ctrl-C;
  143 SIGTERM there (128 + the signal's number, as a shell reports a process it stopped).
"""
import os
import signal
import sys


def stop_outside_training(signum, frame) -> None:
  """SIGINT/SIGTERM while no training step runs (train.faults.Preemption handles them during
  training): nothing to checkpoint, so one line and out at once. At once, with os._exit: a
  KeyboardInterrupt unwinding from here could be swallowed by one of jax's callbacks (the run
  then trained on), or crash the interpreter's shutdown while XLA's threads still compile."""
  del frame
  what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
  try:
    sys.stdout.flush()
  except (OSError, RuntimeError):  # a reentrant call: the signal came in the middle of a print
    pass
  # A newline first: the line may come after the progress bar's.
  os.write(2, f"\ninterrupted: {what} before training started or after it ended (nothing to "
              f"checkpoint), or a second {what}; run the same command again to start or "
              "resume\n".encode())
  os._exit(128 + signum)


def catch_signals() -> None:
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, stop_outside_training)


if __name__ == "__main__":
  catch_signals()  # before the imports below (a second of jax and absl): no traceback from them

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from train.config import ConfigError, check_schema, fail, one_line, parse_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory; an existing one is resumed.")
_SWEEP = flags.DEFINE_multi_string(
    "sweep", [], "FIELD=V1,V2,...: run every combination of the given values, each in "
    "WORKDIR/<field=value,...>, one after another; finished members are skipped (train/sweep.py).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; config fields are set as --config.<field>=<value>")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every file at INFO
  from train.loop import TrainingDiverged, train_and_evaluate  # after flag parsing: fast --help
  from train.faults import EXIT_STATUS, IO_EXIT_STATUS, Preempted, WriteFailed
  try:
    config = _CONFIG.value
    config.keys()  # config_flags loads the file lazily: a missing or broken one fails here
  except Exception as e:  # noqa: BLE001  whatever the user's config file raises
    fail(f"cannot load --config: {one_line(e)}")
  try:
    check_schema(config)
  except ConfigError as e:
    fail(f"--config {config_flags.get_config_filename(flags.FLAGS['config'])}: {e}")
  try:
    if _SWEEP.value:
      from train import sweep
      sweep.run(config, _WORKDIR.value, _SWEEP.value)
    else:
      train_and_evaluate(config, _WORKDIR.value)
  except ConfigError as e:
    fail(str(e))
  except TrainingDiverged as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  except Preempted as e:
    print(f"preempted: {e}", file=sys.stderr)
    sys.exit(EXIT_STATUS)
  except WriteFailed as e:
    print(f"error: {e}", file=sys.stderr)
    sys.stdout.flush()
    # A checkpoint write stuck in orbax's (non-daemon) threads must not keep the process alive.
    os._exit(IO_EXIT_STATUS)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
