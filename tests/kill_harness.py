"""Kill a training run again and again, resume it each time, and check that it ends bit-identical to
an uninterrupted run: parameters, optimizer state, BatchNorm statistics, RNG key, step counter and
every row of metrics.jsonl.

Each interruption is one of
  step: SIGKILL once metrics.jsonl reaches a random step;
  save: SIGKILL while a checkpoint is being written (an orbax `N.orbax-checkpoint-tmp` dir exists);
  term, int: SIGTERM or SIGINT (Ctrl-C) at a random step, which must checkpoint that step and
    exit with status 75;
  lock: at a random step the run is paused (SIGSTOP, holding its workdir lock) and a second run of
    the same command must be refused (exit 2, naming the first's pid); then SIGKILL, whose
    released lock must not stop the resume;
  torn: SIGKILL at a random step, then metrics.jsonl gets a half-written last line and config.json
    is cut in half (once a checkpoint holds the config), as a crash on a full disk leaves them.
The run is MNIST-1D's CNN with BatchNorm, dropout, AdamW and a warm-up + cosine schedule, with
checkpoints every 25 steps and, by time, every `--every_s` seconds (so resumes also start between
host syncs). The full form, from the repository root:

  python -m tests.kill_harness --kills 8 --steps 2000

The test suite runs a reduced form (tests/test_faults.py).
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from train.checkpoint import last_good_step
from train.faults import EXIT_STATUS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("step", "save", "term", "lock", "torn", "int", "step", "save")


def final_state(workdir):
  """The whole TrainState pytree of the latest checkpoint."""
  mngr = ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"))
  state = mngr.restore(mngr.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  mngr.close()
  return state["state"]


def metric_rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if k not in ("time", "examples_per_s")} for r in rows]


def assert_same_run(dir_a, dir_b):
  """Bit-identical final state (params, opt_state, batch_stats, rng, step) and metric rows."""
  a, b = final_state(dir_a), final_state(dir_b)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert metric_rows(dir_a) == metric_rows(dir_b)
  with open(os.path.join(dir_a, "results.json")) as fa, open(os.path.join(dir_b, "results.json")) as fb:
    assert json.load(fa)["final"] == json.load(fb)["final"]


def command(workdir, data_dir, steps, every_s):
  return [sys.executable, "-m", "train", "--config=experiments/mnist1d_cnn.py",
          f"--workdir={workdir}", f"--config.dataset.data_dir={data_dir}",
          f"--config.num_steps={steps}", "--config.log_every=5", "--config.eval_every=50",
          "--config.checkpoint.every=25", f"--config.checkpoint.every_s={every_s}",
          "--config.model.dropout=0.1", "--config.optimizer.warmup_steps=20"]


def latest_logged_step(workdir) -> int:
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      lines = f.read().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError):  # not there yet, or a line being written
    return 0


def saves_in_progress(workdir) -> set[str]:
  try:
    return {d for d in os.listdir(os.path.join(workdir, "checkpoints")) if ".orbax-checkpoint-tmp" in d}
  except OSError:
    return set()


def interrupt(cmd, workdir, kind, target) -> str:
  """Runs `cmd` until the interruption `kind` happens at/after step `target`; returns what happened.

  Rows and tmp dirs that a killed predecessor left behind do not count."""
  target = max(target, latest_logged_step(workdir) + 1)
  stale = saves_in_progress(workdir)
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  refused = ""
  while proc.poll() is None:
    if latest_logged_step(workdir) >= target and (kind != "save" or saves_in_progress(workdir) - stale):
      if kind == "lock":
        refused = second_run_refused(cmd, proc)
      proc.send_signal({"term": signal.SIGTERM, "int": signal.SIGINT}.get(kind, signal.SIGKILL))
      break
    time.sleep(0.002)
  _, err = proc.communicate()
  if kind == "torn":
    refused = tear(workdir)
  partial = sorted(saves_in_progress(workdir) - stale)
  if kind in ("term", "int"):
    assert proc.returncode == EXIT_STATUS, err
    assert f"preempted: stopped by SIG{kind.upper()} after step" in err.splitlines()[-1], err
  elif proc.returncode != -signal.SIGKILL:
    raise AssertionError(f"the run ended (status {proc.returncode}) before its {kind} kill at "
                         f"step {target}: {err[-2000:]}")
  left = f" (left the partial {partial[0]})" if partial else ""
  return f"{kind} after step {latest_logged_step(workdir)}{left}{refused}"


def second_run_refused(cmd, proc) -> str:
  """Pauses `proc` (its lock held) and asserts that a second run of `cmd` is refused."""
  proc.send_signal(signal.SIGSTOP)
  second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  last = second.stderr.strip().splitlines()[-1]
  assert second.returncode == 2 and f"is in use by pid {proc.pid} on " in last, second.stderr
  return " (a second run refused)"


def tear(workdir) -> str:
  """A half-written last row of metrics.jsonl and, once a checkpoint holds the config, half of
  config.json."""
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 99, "split": "tra')
  if not last_good_step(workdir):
    return " (torn metrics.jsonl)"
  path = os.path.join(workdir, "config.json")
  os.truncate(path, os.path.getsize(path) // 2)
  return " (torn metrics.jsonl and config.json)"


def interrupt_mid_save(cmd, workdir, kind, target, tries: int = 3) -> str:
  """`interrupt`, where a "save" kill must leave a partial checkpoint: one whose save finished
  between our seeing its tmp dir and the SIGKILL landing is not a mid-save kill, so it is tried
  again (a SIGKILL at a step, all the same)."""
  for _ in range(tries):
    event = interrupt(cmd, workdir, kind, target)
    if kind != "save" or "(left the partial" in event:
      return event
  raise AssertionError(f"{tries} SIGKILLs during a checkpoint write left no partial checkpoint")


def run(kills: int, steps: int, every_s: float, seed: int, data_dir: str, out: str,
        reference: str | None = None) -> list[str]:
  """Interrupts a run `kills` times at random steps (cycling through KINDS), resumes it to the end and
  asserts it equals `reference` (an uninterrupted run, made here when None). Returns the log."""
  rng = random.Random(seed)
  if reference is None:
    reference = os.path.join(out, "reference")
    subprocess.run(command(reference, data_dir, steps, every_s), cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  workdir = os.path.join(out, "killed")
  targets = sorted(rng.sample(range(5, int(steps * 0.9)), kills))
  events = [interrupt_mid_save(command(workdir, data_dir, steps, every_s), workdir,
                                KINDS[i % len(KINDS)], t) for i, t in enumerate(targets)]
  done = subprocess.run(command(workdir, data_dir, steps, every_s), cwd=REPO, capture_output=True,
                        text=True)
  assert done.returncode == 0, done.stderr
  assert_same_run(reference, workdir)
  return events


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--kills", type=int, default=8)
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--every_s", type=float, default=1.0)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data_dir", default="", help="a TFDS data dir with mnist1d (made if empty)")
  args = parser.parse_args()
  out = tempfile.mkdtemp(prefix="kill_harness_")
  if not args.data_dir:
    import tensorflow_datasets as tfds

    import train.data  # noqa: F401  (registers our builders)
    args.data_dir = os.path.join(out, "tfds")
    tfds.builder("mnist1d", data_dir=args.data_dir).download_and_prepare()
  t0 = time.time()
  events = run(args.kills, args.steps, args.every_s, args.seed, args.data_dir, out)
  print(f"{len(events)} interruptions ({'; '.join(events)}), then resumed to step {args.steps}: "
        f"final state and metrics.jsonl bit-identical to the uninterrupted run "
        f"({time.time() - t0:.0f} s, runs in {out})")


if __name__ == "__main__":
  main()
