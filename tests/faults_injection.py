"""Fault injection without root or a full disk: from a chosen training step on, every write under a
folder fails with an OSError (ENOSPC, EACCES, ...), as a full disk or a folder turned read-only
would make it.

  with failing_writes(workdir / "checkpoints", errno.ENOSPC, from_step=15):
    train_and_evaluate(config, workdir)

Python-level writes are patched (builtins.open and os.open for writing, and the writes to files
so opened, os.mkdir, os.makedirs, os.rename, os.replace): metrics.jsonl, TensorBoard's event file
and every orbax checkpoint's JSON items and commit markers go through them (tensorstore's array
files do not, so a failing save fails on those). As a command it runs `python -m train` with the
fault armed, for the tests that need the real exit status and a process that must end:

  python -m tests.faults_injection --under W/checkpoints --errno ENOSPC --from_step 15 -- \
      --config=experiments/mnist1d_mlp.py --workdir=W ...
  python -m tests.faults_injection --signal_in_init SIGINT -- ...  # Ctrl-C (or SIGTERM) while
                                                                  # the initial state compiles
  python -m tests.faults_injection --ctrl_c_twice_in_training -- ...
"""
import argparse
import builtins
import contextlib
import dataclasses
import errno
import os
import signal

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

  class FailingFile:
    """A file opened for writing under `under`: its later writes fail once the fault is armed."""

    def __init__(self, file, path):
      self.file, self.path = file, path

    def write(self, data):
      check(self.path)
      return self.file.write(data)

    def flush(self):
      check(self.path)
      return self.file.flush()

    def __getattr__(self, name):
      return getattr(self.file, name)

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      return self.file.__exit__(*exc)

  def open_(file, mode="r", *args, **kwargs):
    if not any(c in mode for c in "wax+"):
      return originals["open"](file, mode, *args, **kwargs)
    check(file)
    return FailingFile(originals["open"](file, mode, *args, **kwargs), file)

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


@contextlib.contextmanager
def patched_run(**wrappers):
  """`train.loop.setup` builds its Setup with these fields wrapped: field=lambda original: new."""
  make_setup = train.loop.setup

  def setup(config):
    run = make_setup(config)
    return dataclasses.replace(run, **{k: wrap(getattr(run, k)) for k, wrap in wrappers.items()})

  train.loop.setup = setup
  try:
    yield
  finally:
    train.loop.setup = make_setup


def signal_in_init(signum: int):
  """`signum` to this process as the loop calls `run.init()` (the first compile of a fresh run)."""
  return patched_run(init=lambda init: lambda: (os.kill(os.getpid(), signum), init())[1])


def ctrl_c_twice_in_training():
  """Two SIGINTs as the first train step is called: the first asks for a checkpoint, the second
  stops at once (the handler before train.faults.Preemption's)."""
  def train_step(original):
    def interrupted(*args):
      os.kill(os.getpid(), signal.SIGINT)
      os.kill(os.getpid(), signal.SIGINT)
      return original(*args)
    return interrupted

  return patched_run(train_step=train_step)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--under", help="the folder whose writes fail")
  parser.add_argument("--errno", default="ENOSPC", help="a name from the errno module")
  parser.add_argument("--from_step", type=int, default=0)
  parser.add_argument("--signal_in_init", choices=["SIGINT", "SIGTERM"])
  parser.add_argument("--ctrl_c_twice_in_training", action="store_true")
  args, train_args = parser.parse_known_args()
  from absl import app

  from train import __main__ as cli
  fault = (signal_in_init(signal.Signals[args.signal_in_init]) if args.signal_in_init
           else ctrl_c_twice_in_training() if args.ctrl_c_twice_in_training
           else failing_writes(args.under, getattr(errno, args.errno), args.from_step))
  cli.catch_signals()  # as `python -m train` does first
  with fault:
    app.run(cli.main, argv=["train", *[a for a in train_args if a != "--"]],
            flags_parser=cli.parse_flags)


if __name__ == "__main__":
  main()
