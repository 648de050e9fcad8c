"""Meshes and shardings: one config on 1 device, on 8 simulated CPU devices (data-parallel and
FSDP, with gradient accumulation, resumed onto another mesh) and in two processes, with the same
loss curve to float tolerance."""
import os
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


def test_eight_devices_data_parallel_and_fsdp_match_one_device(data_dir, reference, tmp_path):
  """8 devices as data=8, and as data=2 x fsdp=4 with 2 micro-batches per step whose run is cut
  at step 10 (as if killed after that save) and resumed on data=8: the same losses as one
  device."""
  base = cli_args(data_dir, tmp_path / "dp", "mnist1d_mlp", *TINY)
  dp = run_on_devices(8, base)
  fsdp_args = cli_args(data_dir, tmp_path / "fsdp", "mnist1d_mlp", *TINY,
                       "--config.mesh.fsdp=4", "--config.grad_accum_steps=2")
  finish(run_on_devices(8, fsdp_args))
  shutil.rmtree(tmp_path / "fsdp" / "checkpoints" / "20")  # a finished run is not resumed
  os.remove(tmp_path / "fsdp" / "results.json")
  finish(dp)
  out = finish(run_on_devices(8, cli_args(data_dir, tmp_path / "fsdp", "mnist1d_mlp", *TINY)))
  assert "Resumed from step 10" in out and "mesh {'data': 8, 'fsdp': 1}" in out
  want = losses(reference)
  np.testing.assert_allclose(losses(tmp_path / "dp"), want, rtol=1e-4)
  np.testing.assert_allclose(losses(tmp_path / "fsdp"), want, rtol=1e-4)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_device(data_dir, reference, tmp_path):
  """Two processes on localhost (JAX's CPU collectives), 2 devices each: every process reads half
  of each batch, only process 0 writes logs and results, checkpoints are written together."""
  port = free_port()
  args = cli_args(data_dir, tmp_path / "run", "mnist1d_mlp", *TINY)
  procs = [run_on_devices(2, args, {"JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                                    "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)})
           for i in range(2)]
  for proc in procs:
    finish(proc)
  np.testing.assert_allclose(losses(tmp_path / "run"), losses(reference), rtol=1e-4)
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["10", "20"]


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
    batch, _ = next(data.prefetch_to_device(run.train_iter, run.batch_sharding))
    state, metrics = run.train_step(run.init(), batch)
    states.append((state.params, state.opt_state, metrics["loss"], metrics["grad_norm"]))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), *states)
