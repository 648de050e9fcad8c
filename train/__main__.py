"""python -m train --config experiments/mnist1d_cnn.py --workdir runs/mnist1d_cnn [--config.seed=1]

User errors (bad config, data dir, workdir) print one line and exit with status 2; a run whose
loss or gradient norm turns NaN/Inf prints one line and exits with status 3.
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from train.config import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory; an existing one is resumed.")
flags.mark_flags_as_required(["config", "workdir"])


def fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except (flags.Error, ValueError, TypeError, AttributeError, KeyError) as e:
    fail(str(e).splitlines()[0] if str(e) else type(e).__name__)


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; config fields are set as --config.<field>=<value>")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every file at INFO
  from train.loop import TrainingDiverged, train_and_evaluate  # after flag parsing: fast --help
  try:
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except ConfigError as e:
    fail(str(e))
  except TrainingDiverged as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
