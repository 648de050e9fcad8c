"""Fault injection without root or a full disk: from a chosen training step on, every write under a
folder fails with an OSError (ENOSPC, EACCES, ...), as a full disk or a folder turned read-only
would make it.

  with failing_writes(workdir / "checkpoints", errno.ENOSPC, from_step=15):
    train_and_evaluate(config, workdir)

Python-level writes are patched (builtins.open and os.open for writing, os.mkdir, os.makedirs,
os.rename, os.replace): metrics.jsonl, TensorBoard's event file and every orbax checkpoint's JSON
items and commit markers go through them (tensorstore's array files do not, so a failing save
fails on those). As a command it runs `python -m train` with the fault armed, for the tests that
need the real exit status and a process that must end:

  python -m tests.faults_injection --under W/checkpoints --errno ENOSPC --from_step 15 -- \
      --config=experiments/mnist1d_mlp.py --workdir=W ...
"""
import argparse
import builtins
import contextlib
import dataclasses
import errno
import os

import train.loop

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@contextlib.contextmanager
def failing_writes(under, code: int = errno.ENOSPC, from_step: int = 0):
  """Writes to paths under `under` raise OSError(`code`) once the loop starts step `from_step`
  (0: at once). Yields a dict whose "failed" lists the paths refused."""
  under = os.path.abspath(os.fspath(under))
  state = {"armed": from_step == 0, "failed": []}

  def check(path):
    path = os.path.abspath(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
    if state["armed"] and (path == under or path.startswith(under + os.sep)):
      state["failed"].append(path)
      raise OSError(code, os.strerror(code), path)

  originals = {"open": builtins.open, "os.open": os.open, "mkdir": os.mkdir,
               "makedirs": os.makedirs, "rename": os.rename, "replace": os.replace,
               "setup": train.loop.setup}

  def open_(file, mode="r", *args, **kwargs):
    if any(c in mode for c in "wax+"):
      check(file)
    return originals["open"](file, mode, *args, **kwargs)

  def os_open(path, flags, *args, **kwargs):
    if flags & WRITE_FLAGS:
      check(path)
    return originals["os.open"](path, flags, *args, **kwargs)

  def guarded(name):
    def call(src, *args, **kwargs):
      check(src)
      if args and name in ("rename", "replace"):
        check(args[0])
      return originals[name](src, *args, **kwargs)
    return call

  def setup(config):
    run = originals["setup"](config)

    def train_step(state_, batch):
      state["armed"] = state["armed"] or int(state_.step) + 1 >= from_step
      return run.train_step(state_, batch)

    return dataclasses.replace(run, train_step=train_step)

  builtins.open, os.open = open_, os_open
  os.mkdir, os.makedirs = guarded("mkdir"), guarded("makedirs")
  os.rename, os.replace = guarded("rename"), guarded("replace")
  train.loop.setup = setup
  try:
    yield state
  finally:
    builtins.open, os.open = originals["open"], originals["os.open"]
    os.mkdir, os.makedirs = originals["mkdir"], originals["makedirs"]
    os.rename, os.replace = originals["rename"], originals["replace"]
    train.loop.setup = originals["setup"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--under", required=True)
  parser.add_argument("--errno", default="ENOSPC", help="a name from the errno module")
  parser.add_argument("--from_step", type=int, default=0)
  args, train_args = parser.parse_known_args()
  from absl import app

  from train import __main__ as cli
  with failing_writes(args.under, getattr(errno, args.errno), args.from_step):
    app.run(cli.main, argv=["train", *[a for a in train_args if a != "--"]],
            flags_parser=cli.parse_flags)


if __name__ == "__main__":
  main()
