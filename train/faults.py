"""Faults a run survives: non-finite values and preemption.

Non-finite guard: the train metrics of a host sync are checked here, and every state is checked
before it is checkpointed, so a NaN/Inf state never replaces the last good checkpoint.
config.nonfinite="stop" stops the run at the first non-finite loss or gradient norm;
"skip" leaves such steps out (optax.apply_if_finite, see train/optim.py), logs how many were skipped
and stops only when the parameters themselves went non-finite.

Preemption: SIGTERM or SIGINT (Ctrl-C) asks the training loop to finish its current step, write a
checkpoint and raise `Preempted`; `python -m train` then exits with EXIT_STATUS and re-running the
same command resumes. A second signal acts as it would without us: Ctrl-C raises KeyboardInterrupt
at once, SIGTERM kills.
"""
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np

from train.checkpoint import path_str

WATCHED = ("loss", "grad_norm")


class TrainingDiverged(RuntimeError):
  """The loss, gradient norm or parameters went non-finite; no checkpoint of that state exists."""


@jax.jit
def _finite_leaves(tree):
  return jax.tree.map(
      lambda x: jnp.isfinite(x).all() if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.bool_(True),
      tree)


def first_nonfinite(tree) -> str | None:
  """The path ('params/Dense_0/kernel') of the first leaf holding a NaN/Inf; None if all finite."""
  flags = jax.device_get(_finite_leaves(tree))
  return next((path_str(p) for p, ok in jax.tree_util.tree_flatten_with_path(flags)[0] if not ok),
              None)


def where(latest_step) -> str:
  return (f"the latest checkpoint (step {latest_step or 'none'}) is untouched. Try a lower "
          "config.optimizer.lr, set config.optimizer.grad_clip_norm, or config.nonfinite='skip'")


def fetch(rows: list[dict]) -> list[dict]:
  """The rows' values on the host: each metric's values stacked on the device first, so that a
  host sync copies one array per metric rather than one scalar per step and metric."""
  stacked = jax.device_get(jax.tree.map(lambda *values: jnp.stack(values), *rows))
  return [{k: v[i] for k, v in stacked.items()} for i in range(len(rows))]


def summarize(rows: list[dict], step: int, state, latest_step, mode: str) -> dict[str, float]:
  """The mean of each metric over `rows`, the train steps up to `step` (a host sync).

  "stop": TrainingDiverged naming the first non-finite metric and parameter. "skip": the mean over
  the finite steps, with `skipped` counting the others; TrainingDiverged once a parameter is
  non-finite (optax.apply_if_finite gave up)."""
  rows = fetch(rows)
  finite = [all(np.isfinite(r[k]) for k in WATCHED) for r in rows]
  first = step - len(rows) + 1
  if mode == "skip":
    bad_param = first_nonfinite(state)
    if bad_param:
      raise TrainingDiverged(f"{bad_param} became non-finite between steps {first} and "
                             f"{step} after the skipped steps; {where(latest_step)}")
    kept = [r for r, ok in zip(rows, finite) if ok]
    means = {k: float(np.mean([r[k] for r in kept])) if kept else float("nan") for k in rows[0]}
    return {**means, "skipped": len(rows) - len(kept)}
  if not all(finite):
    row = rows[finite.index(False)]
    metric = next(k for k in WATCHED if not np.isfinite(row[k]))
    bad_param = first_nonfinite(state)
    param = f"; first non-finite in the state: {bad_param}" if bad_param else ""
    raise TrainingDiverged(f"{metric} became {float(row[metric])} at step "
                           f"{first + finite.index(False)} (checked at step {step}){param}; "
                           f"{where(latest_step)}")
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def check_state(state, step: int, latest_step) -> None:
  """Before a checkpoint: TrainingDiverged naming the first non-finite leaf of the state."""
  bad = first_nonfinite(state)
  if bad:
    raise TrainingDiverged(f"{bad} is non-finite at step {step}, so it is not checkpointed; "
                           f"{where(latest_step)}")


# Preemption ----------------------------------------------------------------------------------------

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
