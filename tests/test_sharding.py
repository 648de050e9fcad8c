"""Meshes and shardings: one config on 1 device, on 8 simulated CPU devices (data-parallel and
FSDP, with gradient accumulation, resumed onto another mesh) and in two processes, with the same
loss curve to float tolerance."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.conftest import load_config
from tests.test_train import cli_args, metric_rows
from train import data, sharding
from train.config import ConfigError
from train.loop import setup, train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("--config.num_steps=20", "--config.log_every=5", "--config.eval_every=10",
        "--config.checkpoint.every=10", "--config.batch_size=32", "--config.eval_batch_size=200")


def run_on_devices(num_devices: int, args, env=None):
  env = {**os.environ, **(env or {}),
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={num_devices}"}
  return subprocess.Popen([sys.executable, "-m", "train", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  return out


def losses(workdir):
  return np.array([r["loss"] for r in metric_rows(workdir) if r["split"] == "train"])


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
  """The same 20-step MLP run on this process's one device."""
  config = load_config("mnist1d_mlp")
  config.dataset.data_dir = data_dir
  config.update_from_flattened_dict(
      {k.removeprefix("--config."): int(v) for k, v in (a.split("=") for a in TINY)})
  workdir = tmp_path_factory.mktemp("one_device") / "run"
  train_and_evaluate(config, str(workdir))
  return workdir


@pytest.mark.slow  # four 8-device training processes: `make test-slow`
def test_eight_devices_data_parallel_and_fsdp_match_one_device(data_dir, reference, tmp_path):
  """8 devices as data=8, and as data=2 x fsdp=4 with 2 micro-batches per step whose run is cut
  at step 10 (as if killed after that save) and resumed on data=8: the same losses as one
  device."""
  base = cli_args(data_dir, tmp_path / "dp", "mnist1d_mlp", *TINY)
  dp = run_on_devices(8, base)
  fsdp_args = cli_args(data_dir, tmp_path / "fsdp", "mnist1d_mlp", *TINY,
                       "--config.mesh.fsdp=4", "--config.grad_accum_steps=2")
  assert "(mesh {'data': 2, 'fsdp': 4})" in finish(run_on_devices(8, fsdp_args))
  shutil.rmtree(tmp_path / "fsdp" / "checkpoints" / "20")  # a finished run is not resumed
  os.remove(tmp_path / "fsdp" / "results.json")
  assert "(mesh {'data': 8, 'fsdp': 1})" in finish(dp)
  out = finish(run_on_devices(8, cli_args(data_dir, tmp_path / "fsdp", "mnist1d_mlp", *TINY)))
  assert "Resumed from step 10" in out and "mesh {'data': 8, 'fsdp': 1}" in out
  want = losses(reference)
  np.testing.assert_allclose(losses(tmp_path / "dp"), want, rtol=1e-4)
  np.testing.assert_allclose(losses(tmp_path / "fsdp"), want, rtol=1e-4)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


# `python -m train` in one process of several, with a spy on the rows this process feeds to its
# devices (sharding.to_global: a train batch, or an eval batch, which carries a mask), written as
# JSON to $SPY_OUT at exit; with $SIGTERM_AT_BATCH=K the process sends itself SIGTERM when it feeds
# its K-th train batch (a preemption of this process alone, at a known point of the run).
SPY_MAIN = """
import atexit, json, os, signal, sys
from train import sharding
to_global, fed = sharding.to_global, {"train": [], "eval": []}
def spy(batch, batch_sharding):
  rows = fed["eval" if "mask" in batch else "train"]
  rows.append(len(batch["x"]))
  if "mask" not in batch and len(rows) == int(os.environ.get("SIGTERM_AT_BATCH", 0)):
    os.kill(os.getpid(), signal.SIGTERM)
  return to_global(batch, batch_sharding)
sharding.to_global = spy
atexit.register(lambda: json.dump(fed, open(os.environ["SPY_OUT"], "w")))
from absl import app
from train.__main__ import main, parse_flags
sys.argv = ["train", *sys.argv[1:]]
app.run(main, flags_parser=parse_flags)
"""


def two_processes(args, spy_dir, sigterm_at: dict | None = None) -> list[tuple[int, str, str, dict]]:
  """Runs `python -m train ARGS` as two processes of 2 CPU devices each, on localhost; returns each
  one's (exit status, stdout, stderr, the rows it fed)."""
  port = free_port()
  procs = []
  for i in range(2):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": "2",
           "JAX_PROCESS_ID": str(i), "SPY_OUT": str(spy_dir / f"fed{i}.json"),
           "SIGTERM_AT_BATCH": str((sigterm_at or {}).get(i, 0))}
    procs.append(subprocess.Popen([sys.executable, "-c", SPY_MAIN, *args], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  results = []
  try:
    for i, proc in enumerate(procs):
      out, err = proc.communicate(timeout=300)
      with open(spy_dir / f"fed{i}.json") as f:
        results.append((proc.returncode, out, err, json.load(f)))
  finally:  # one process dead or stuck: the other may wait for it in a collective forever
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  return results


@pytest.fixture(scope="module")
def two_process_run(data_dir, tmp_path_factory):
  """The 20-step MLP run as two processes of 2 devices each: (workdir, what each process fed)."""
  tmp = tmp_path_factory.mktemp("two_processes")
  runs = two_processes(cli_args(data_dir, tmp / "run", "mnist1d_mlp", *TINY), tmp)
  for status, _, err, _ in runs:
    assert status == 0, err[-3000:]
  return tmp / "run", [fed for *_, fed in runs]


@pytest.mark.slow  # two processes: `make test-slow`
def test_two_processes_match_one_device(two_process_run, reference):
  """Two processes on localhost (JAX's CPU collectives), 2 devices each: every process feeds only
  its half of each global batch (16 of 32 train rows, 100 of 200 eval rows), only process 0 writes
  logs and results, checkpoints are written together, and the losses are one device's."""
  workdir, fed = two_process_run
  for rows in fed:
    assert rows["train"] and set(rows["train"]) == {16} and set(rows["eval"]) == {100}
    assert len(rows["train"]) >= 20  # every step's batch (and up to 2 read ahead)
  np.testing.assert_allclose(losses(workdir), losses(reference), rtol=1e-4)
  assert sorted(os.listdir(workdir / "checkpoints")) == ["10", "20"]


@pytest.mark.slow  # three runs of two processes: `make test-slow`
def test_sigterm_to_one_process_stops_both_and_the_resumes_are_exact(two_process_run, data_dir,
                                                                      tmp_path):
  """SIGTERM to process 1 alone: both processes checkpoint the same step and exit with 75. The
  re-run equals the uninterrupted run bit for bit; so does a re-run of a copy whose latest
  checkpoint was truncated (both processes skip it, one moves it to checkpoints.corrupt/, and
  they resume together from the one before)."""
  from train.faults import EXIT_STATUS

  workdir = tmp_path / "run"
  args = cli_args(data_dir, workdir, "mnist1d_mlp", *TINY)
  stopped = two_processes(args, tmp_path, sigterm_at={1: 12})
  steps = set()
  for status, _, err, _ in stopped:
    assert status == EXIT_STATUS, err[-3000:]
    steps.add(re.search(r"preempted: stopped by .*after step (\d+), which is checkpointed",
                        err).group(1))
  assert len(steps) == 1 and "SIGTERM" in stopped[1][2]  # the same step; process 1 was signalled
  step = int(steps.pop())
  assert 11 <= step < 20 and sorted(os.listdir(workdir / "checkpoints")) == ["10", str(step)]

  corrupt = tmp_path / "corrupt"
  shutil.copytree(workdir, corrupt)
  state_dir = corrupt / "checkpoints" / str(step) / "state"
  victim = max((os.path.join(d, f) for d, _, fs in os.walk(state_dir) for f in fs),
               key=os.path.getsize)
  os.truncate(victim, os.path.getsize(victim) // 2)

  for run_dir, resumed_from in ((workdir, step), (corrupt, 10)):
    resumed = two_processes(cli_args(data_dir, run_dir, "mnist1d_mlp", *TINY), tmp_path)
    for status, _, err, _ in resumed:
      assert status == 0, err[-3000:]
    assert f"Resumed from step {resumed_from} of" in resumed[0][1]
    # Every logged number (train loss, gradient norm, lr, validation and test metrics) bit for
    # bit; the checkpoints themselves are written by 2 processes and readable only by 2.
    assert metric_rows(run_dir) == metric_rows(two_process_run[0])
    assert (json.loads((run_dir / "results.json").read_text())["final"]
            == json.loads((two_process_run[0] / "results.json").read_text())["final"])
  for _, _, err, _ in resumed:
    assert f"Warning: the checkpoint at step {step} is unreadable" in err
  assert os.listdir(corrupt / "checkpoints.corrupt") == [str(step)]


@pytest.mark.parametrize("mesh, accum, message", [
    ({"data": -1, "fsdp": 3}, 1, "config.mesh.fsdp=3 must divide the 1 devices"),
    ({"data": 2, "fsdp": 1}, 1, "config.mesh.data=2 x config.mesh.fsdp=1 must equal the 1 devices"),
    ({"data": -1, "fsdp": 1}, 3, "config.batch_size=32 must be divisible by the 1 devices x "
                                 "config.grad_accum_steps=3"),
])
def test_bad_meshes_are_config_errors(tiny_config, tmp_path, mesh, accum, message):
  config = tiny_config("mnist1d_mlp", batch_size=32, grad_accum_steps=accum)
  config.mesh.update(mesh)
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


# Builds the MLP's run on a data=2 x fsdp=4 mesh of 8 CPU devices and prints, for every leaf of
# the initial train state: its shape, its PartitionSpec and the shapes of this process's shards.
FSDP_PROBE = """
import json, sys
import jax
from tests.conftest import load_config
from train.loop import setup
config = load_config("mnist1d_mlp")
config.dataset.data_dir = sys.argv[1]
config.mesh.fsdp, config.batch_size, config.eval_batch_size = 4, 32, 200
state = setup(config).init()
print(json.dumps({jax.tree_util.keystr(path): [list(leaf.shape), str(leaf.sharding.spec),
                                                sorted({s.data.shape for s in leaf.addressable_shards})]
                  for path, leaf in jax.tree_util.tree_leaves_with_path(state)}))
"""


def test_fsdp_splits_parameters_and_optimizer_state_along_the_fsdp_axis(data_dir):
  """After init on data=2 x fsdp=4, each matrix of the MLP (40 -> 100 -> 100 -> 10) and its Adam
  moments is split in 4 along one dimension (each device holds a quarter: 8 devices, 2 copies of
  each quarter); the bias vectors are replicated."""
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
  proc = subprocess.run([sys.executable, "-c", FSDP_PROBE, data_dir], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  leaves = json.loads(proc.stdout.strip().splitlines()[-1])
  quarters = {"['Dense_0']['kernel']": ([40, 100], [[40, 25]]),
              "['Dense_1']['kernel']": ([100, 100], [[25, 100]]),
              "['Dense_2']['kernel']": ([100, 10], [[25, 10]])}
  for tree in (".params", ".opt_state[0][0].mu", ".opt_state[0][0].nu"):  # params, Adam moments
    for leaf, (shape, shards) in quarters.items():
      got_shape, spec, got_shards = leaves[tree + leaf]
      assert got_shape == shape and "fsdp" in spec and got_shards == shards, (tree + leaf, spec)
    assert leaves[tree + "['Dense_0']['bias']"][2] == [[100]]  # a vector: replicated
  split = [k for k, (_, spec, _) in leaves.items() if "fsdp" in spec]
  assert len(split) == 9, split


def test_fsdp_splits_the_largest_dimension_it_divides():
  assert sharding.fsdp_dim((40, 100), 4) == 1
  assert sharding.fsdp_dim((100, 40), 4) == 0
  assert sharding.fsdp_dim((6, 10), 4) is None  # neither divides: replicated
  assert sharding.fsdp_dim((100,), 4) is None  # vectors stay replicated
  assert sharding.fsdp_dim((40, 100), 1) is None


def test_grad_accumulation_equals_the_whole_batch(tiny_config):
  """Two micro-batches give the whole batch's update (an MLP: no BatchNorm, no dropout)."""
  states = []
  for accum in (1, 2):
    run = setup(tiny_config("mnist1d_mlp", batch_size=32, grad_accum_steps=accum))
    batch, _ = next(data.prefetch_to_device(run.train_iter, run.batch_sharding, run.train_data))
    state, metrics = run.train_step(run.init(), batch)
    states.append((state.params, state.opt_state, metrics["loss"], metrics["grad_norm"]))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), *states)
