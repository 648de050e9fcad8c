"""Preemption: SIGTERM or SIGINT (Ctrl-C) asks the training loop to finish its current step, write a
checkpoint and raise `Preempted`; `python -m train` then exits with EXIT_STATUS and re-running the
same command resumes. A second signal acts as it would without us: Ctrl-C raises KeyboardInterrupt
at once, SIGTERM kills."""
import os
import signal
import threading

EXIT_STATUS = 75  # EX_TEMPFAIL (sysexits.h): temporary failure, re-run to resume
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """The run stopped on a signal after writing a checkpoint of its last finished step."""


class Preemption:
  """Records the first SIGTERM/SIGINT between `install()` and `uninstall()`, which restores the
  previous handlers. Outside the main thread (where Python allows no handlers) it does nothing."""

  def __init__(self):
    self.signal: int | None = None
    self.previous: dict[int, object] = {}

  @property
  def requested(self) -> bool:
    return self.signal is not None

  @property
  def name(self) -> str:
    return signal.Signals(self.signal).name if self.signal else ""

  def handle(self, signum, frame) -> None:
    del frame
    if self.signal is not None:  # the second one: behave as if we were not here
      self.uninstall()
      os.kill(os.getpid(), signum)
      return
    self.signal = signum

  def install(self) -> "Preemption":
    if threading.current_thread() is threading.main_thread():
      self.previous = {s: signal.signal(s, self.handle) for s in SIGNALS}
    return self

  def uninstall(self) -> None:
    for s, handler in self.previous.items():
      signal.signal(s, handler)
    self.previous = {}
