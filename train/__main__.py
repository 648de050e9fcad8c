"""python -m train --config experiments/mnist1d_cnn.py --workdir runs/mnist1d_cnn [--config.seed=1]
  [--sweep seed=0,1,2 --sweep optimizer.lr=1e-3,3e-3]   (a sweep: train/sweep.py)

User errors (bad config, data dir, workdir) print one line and exit with status 2; a run whose
loss or gradient norm turns NaN/Inf prints one line and exits with status 3; SIGTERM or Ctrl-C
checkpoints the step being trained and exits with status 75 (re-run to resume).
"""
import ast
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from train.config import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory; an existing one is resumed.")
_SWEEP = flags.DEFINE_multi_string(
    "sweep", [], "FIELD=V1,V2,...: run every combination of the given values, each in "
    "WORKDIR/<field=value,...>, one after another; finished members are skipped (train/sweep.py).")
flags.mark_flags_as_required(["config", "workdir"])


def fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def one_line(e: Exception) -> str:
  """config_flags puts the repr() of a multi-line message in some errors: decode it, one line."""
  message = str(e)
  try:
    message = str(ast.literal_eval(message))
  except (ValueError, SyntaxError):
    pass
  return " ".join(message.split()) or type(e).__name__


def parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001  bad flags, overrides or config files: all the user's
    fail(f"{type(e).__name__ if isinstance(e, SyntaxError) else 'bad flags'}: {one_line(e)}")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; config fields are set as --config.<field>=<value>")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every file at INFO
  from train.loop import TrainingDiverged, train_and_evaluate  # after flag parsing: fast --help
  from train.faults import EXIT_STATUS, Preempted
  try:
    config = _CONFIG.value
    config.keys()  # config_flags loads the file lazily: a missing or broken one fails here
  except Exception as e:  # noqa: BLE001  whatever the user's config file raises
    fail(f"cannot load --config: {one_line(e)}")
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


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
