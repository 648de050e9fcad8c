"""What a run shows and leaves behind: progress bar, metrics.jsonl, TensorBoard, plots, JSON files."""
import collections
import json
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
from tensorboardX.event_file_writer import EventsWriter  # noqa: E402
from tensorboardX.proto.event_pb2 import Event, SessionLog  # noqa: E402
from tensorboardX.summary import scalar  # noqa: E402
from tqdm import tqdm  # noqa: E402

from train.config import ConfigError  # noqa: E402


def write_json(path: str, obj) -> None:
  """Atomic: a reader never sees half a file."""
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2, default=str)
    f.write("\n")
  os.replace(path + ".tmp", path)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of metrics.jsonl. A torn last line (what a crash or a full disk leaves mid-write)
  is left out with a warning; a bad line before it is a ConfigError naming it."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = [line for line in f.read().splitlines() if line.strip()]
  rows = []
  for i, line in enumerate(lines):
    try:
      rows.append(json.loads(line))
    except ValueError as e:
      if i + 1 < len(lines):
        raise ConfigError(f"{path}: row {i + 1} is not JSON ({e})") from e
      print(f"Warning: dropped the torn last line of {path}: {line[:60]!r}", file=sys.stderr)
  return rows


def drop_metrics_after(workdir: str, step: int) -> None:
  """On resume: rows past the restored checkpoint are re-made by the resumed run, and so is the
  test split's row, made at the end of every run (and a torn last line goes)."""
  rows = [r for r in read_metrics(workdir) if r["step"] <= step and r["split"] != "test"]
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path + ".tmp", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  os.replace(path + ".tmp", path)


class Logger:
  """One call per logging event: appends to metrics.jsonl and TensorBoard, updates the bar.
  With `write_files=False` (processes other than 0) it only counts steps."""

  def __init__(self, workdir: str, start_step: int, num_steps: int, write_files: bool = True):
    self.write_files = write_files
    if write_files:
      self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
      self.tb = EventFile(os.path.join(workdir, "tensorboard"), purge_step=start_step)
    self.bar = tqdm(total=num_steps, initial=start_step, unit="step", dynamic_ncols=True,
                    mininterval=1.0, disable=not write_files)
    self.timed = False

  def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
    if not self.write_files:
      return
    row = {"step": step, "split": split, **metrics, "time": time.time()}
    self.jsonl.write(json.dumps(row) + "\n")
    self.jsonl.flush()
    self.tb.add_scalars(split, metrics, step)
    if split == "train":
      self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", refresh=False)
    else:
      shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
      self.bar.write(f"step {step:>7} {split}: {shown}")

  def advance(self, steps: int = 1) -> None:
    """Called after each step is dispatched. The first call of a run follows the compilation, so
    the bar's clock restarts there: its rate and ETA count training steps only."""
    self.bar.update(steps)
    if not self.timed and not self.bar.disable:  # a disabled bar (processes > 0) has no clock
      self.timed = True
      now = self.bar._time()  # last_print_t too: tqdm's close() shows a bar printed since start_t
      self.bar.initial, self.bar.start_t, self.bar.last_print_t = self.bar.n, now, now

  def close(self, after_error: bool = False) -> None:
    """After an error, quietly: a full disk would fail the final flush again and hide it."""
    self.bar.close()
    if self.write_files:
      for file in (self.tb, self.jsonl):
        try:
          file.close()
        except OSError:
          if not after_error:
            raise


class EventFile:
  """TensorBoard scalars, written and flushed in the caller's thread. tensorboardX's SummaryWriter
  writes from a thread that dies silently on a failed write (a full disk), after which its
  add_scalar blocks forever on a full queue: here a failed write raises where it happens."""

  def __init__(self, logdir: str, purge_step: int = 0):
    os.makedirs(logdir, exist_ok=True)
    self.writer = EventsWriter(os.path.join(logdir, "events"))
    if purge_step:  # TensorBoard then hides the events a crashed predecessor wrote past it
      self.writer.write_event(Event(wall_time=time.time(), step=purge_step,
                                    session_log=SessionLog(status=SessionLog.START)))

  def add_scalars(self, split: str, metrics: dict[str, float], step: int) -> None:
    for name, value in metrics.items():
      self.writer.write_event(Event(wall_time=time.time(), step=step,
                                    summary=scalar(f"{split}/{name}", value)))
    self.flush()

  def flush(self) -> None:
    """To the OS, as metrics.jsonl is: tensorboardX's flush also fsyncs, milliseconds a call
    during which a small model's device waits (close() still does)."""
    file = getattr(getattr(self.writer, "_py_recordio_writer", None), "_writer", None)
    if file is None:  # another tensorboardX
      self.writer.flush()
    else:
      file.flush()

  def close(self) -> None:
    self.writer.close()


def plot_curves(workdir: str, path: str | None = None) -> str:
  """One panel per metric shared by train and eval (loss, accuracy), one line per split."""
  series = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in read_metrics(workdir):
    for k, v in row.items():
      if k not in ("step", "split", "time"):
        series[k][row["split"]].append((row["step"], v))
  names = [m for m in ("loss", "accuracy") if m in series] or sorted(series)
  fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
  for ax, name in zip(axes[0], names):
    for split, points in sorted(series[name].items()):
      steps, values = zip(*points)
      ax.plot(steps, values, label=split, marker="o" if split != "train" else None, markersize=3)
    ax.set(xlabel="step", title=name)
    if name == "loss":
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(os.path.basename(os.path.normpath(workdir)))
  fig.tight_layout()
  path = path or os.path.join(workdir, "curves.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
