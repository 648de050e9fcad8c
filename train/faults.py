"""Faults a run survives: non-finite values, preemption, failed writes and too little memory.

Non-finite guard: the train metrics of a host sync are checked here, and every state is checked
before it is checkpointed, so a NaN/Inf state never replaces the last good checkpoint.
config.nonfinite="stop" stops the run at the first non-finite loss or gradient norm;
"skip" leaves such steps out (optax.apply_if_finite, see train/optim.py), logs how many were skipped
and stops only when the parameters themselves went non-finite.

Preemption: SIGTERM or SIGINT (Ctrl-C) asks the training loop to finish its current step (its
current call of config.steps_per_call steps), write a checkpoint and raise `Preempted`;
`python -m train` then exits with EXIT_STATUS and re-running the same command resumes. A second
signal goes to the handler before ours: `python -m train`'s (one line, exit 128 + the signal, as
before training starts), or Python's (Ctrl-C raises KeyboardInterrupt, SIGTERM kills).

Failed writes (a full disk, a folder turned read-only) in logging or checkpointing stop the run at
once with `WriteFailed`, naming the path and the last good checkpoint (exit IO_EXIT_STATUS); out of
device memory in a compile or a step is a one-line `OutOfMemory` with the sizes. Both come from
`explained()`, around the whole run.
"""
import contextlib
import os
import re
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np

from train.checkpoint import last_good_step, path_str
from train.config import ConfigError

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


@jax.jit
def stack_rows(rows: list[dict]) -> dict:
  """{metric: its values over the steps}, one compiled call (compiled once per shape of `rows`),
  not one stack per metric of as many arguments as rows (which cost ~5 ms a sync on a CPU). A row
  is one step's metrics, or a call's with config.steps_per_call > 1 (each value of shape [n])."""
  return jax.tree.map(lambda *values: jnp.concatenate([jnp.atleast_1d(v) for v in values]), *rows)


def summarize(rows: list[dict], step: int, state, latest_step, mode: str) -> dict[str, float]:
  """The mean of each metric over `rows`, the train steps up to `step` (a host sync); a row holds
  one step's metrics or, from a call of several steps, each step's (`stack_rows`).

  "stop": TrainingDiverged naming the first non-finite metric and parameter. "skip": the mean over
  the finite steps, with `skipped` counting the others; TrainingDiverged once a parameter is
  non-finite (optax.apply_if_finite gave up). Each metric's values are stacked on the device first,
  so that the sync copies one array per metric, and averaged as one array (the same float32 means
  as of the rows one by one, in a fraction of the host time: the device waits for it)."""
  names = list(rows[0])
  values = jax.device_get(stack_rows(rows))  # {metric: (steps,)}
  finite = np.logical_and.reduce([np.isfinite(values[k]) for k in WATCHED])
  first = step - len(finite) + 1
  if mode == "skip":
    bad_param = first_nonfinite(state)
    if bad_param:
      raise TrainingDiverged(f"{bad_param} became non-finite between steps {first} and "
                             f"{step} after the skipped steps; {where(latest_step)}")
    means = {k: float(np.mean(values[k][finite])) if finite.any() else float("nan")
             for k in names}
    return {**means, "skipped": len(finite) - int(finite.sum())}
  if not finite.all():
    bad = int(np.argmin(finite))
    metric = next(k for k in WATCHED if not np.isfinite(values[k][bad]))
    bad_param = first_nonfinite(state)
    param = f"; first non-finite in the state: {bad_param}" if bad_param else ""
    raise TrainingDiverged(f"{metric} became {float(values[metric][bad])} at step "
                           f"{first + bad} (checked at step {step}){param}; "
                           f"{where(latest_step)}")
  return {k: float(np.mean(values[k])) for k in names}


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
    # os.write, not print: safe in a handler; a long first compile must not look like it ignored us.
    os.write(2, f"\n{self.name}: stopping after this step (or call), with a checkpoint "
                f"({self.name} again to stop at once)\n".encode())

  def install(self) -> "Preemption":
    if threading.current_thread() is threading.main_thread():
      self.previous = {s: signal.signal(s, self.handle) for s in SIGNALS}
    return self

  def uninstall(self) -> None:
    for s, handler in self.previous.items():
      signal.signal(s, handler)
    self.previous = {}


# Failed writes and memory --------------------------------------------------------------------------

IO_EXIT_STATUS = 74  # EX_IOERR (sysexits.h)


class WriteFailed(Exception):
  """A write to the workdir failed; the run stopped at once, every finished checkpoint kept."""


class OutOfMemory(ConfigError):
  """The state, or a step's compile or run, does not fit the device's memory."""


@contextlib.contextmanager
def explained(workdir: str, abstract_state):
  """Turns a failed write (any OSError: metrics.jsonl, TensorBoard, a checkpoint) into WriteFailed
  and XLA's RESOURCE_EXHAUSTED (out of memory in a compile or a step) into OutOfMemory."""
  try:
    yield
  except OSError as e:
    last = last_good_step(workdir)
    kept = (f"the last good checkpoint is step {last} in "
            f"{os.path.join(workdir, 'checkpoints')}, kept as it is" if last else
            "there is no checkpoint yet")
    raise WriteFailed(f"cannot write {e.filename or workdir}: {e.strerror or e}; {kept}. Fix "
                      "the cause (free space, permissions) and run the same command again to "
                      "resume") from e
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    wanted = re.search(r"allocate (\d+) bytes", str(e))
    wanted = f"an allocation of {int(wanted.group(1)) / 2**30:.2f} GiB failed; " if wanted else ""
    device = jax.local_devices()[0]
    raise OutOfMemory(f"out of memory on {device.device_kind}: {wanted}the state takes "
                      f"{state_bytes(abstract_state) / 2**30:.2f} GiB per device of its "
                      f"{memory_limit(device) / 2**30:.2f} GiB. Lower config.batch_size, "
                      "raise config.grad_accum_steps or config.mesh.fsdp, set config.model.remat, "
                      "or use a smaller model") from e


def memory_limit(device) -> int:
  """Bytes one device can hold: its allocator's limit (GPU, TPU); the host's RAM for a CPU."""
  stats = device.memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"])
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def state_bytes(abstract_state) -> int:
  """Bytes of one device's shard of the state (ShapeDtypeStructs with their shardings)."""
  return sum(np.dtype(a.dtype).itemsize * int(np.prod(a.sharding.shard_shape(a.shape)))
             for a in jax.tree.leaves(abstract_state))


def check_fits_memory(abstract_state) -> None:
  """OutOfMemory when the state alone (parameters, optimizer state) exceeds a device's memory:
  the real limit, before the disk-space check could blame the disk."""
  need, device = state_bytes(abstract_state), jax.local_devices()[0]
  if need > memory_limit(device):
    raise OutOfMemory(f"the state (parameters and optimizer state) takes {need / 2**30:.2f} GiB "
                      f"per device, more than the {memory_limit(device) / 2**30:.2f} GiB of a "
                      f"{device.device_kind}; use a smaller model, or config.mesh.fsdp to split "
                      "it over more devices")
