"""python docs/registry/resume_sensitivity.py [EPS ...], from the repository root: how far the
later losses of tests/test_gpu.py's resume test move when its step-20 checkpoint is perturbed.

The test's run (the default experiment, 30 steps, checkpoints every 10, log every 5) is trained
on the CPU; its checkpoint of step 20 gets each parameter multiplied by (1 + eps * N(0, 1)), the
later checkpoint is removed and the run resumed. Printed: the relative change of the train loss
at steps 25 and 30 against the unperturbed run. A stand-in for the GPU's float32 rounding
against the CPU's, to size that test's 1e-3 tolerance.

2026-11-27, jax 0.10.2, AMD EPYC (session 11), on one core (`taskset -c 0`):
  eps 1e-06 {25: '0.00e+00', 30: '7.89e-08'}
  eps 1e-05 {25: '4.21e-07', 30: '8.68e-07'}
and, in an earlier version of this script (the reference trained by `python -m train` with the
same settings, nothing pinned to a core): 8.42e-08, 7.89e-08 (1e-6); 4.21e-07, 9.46e-07 (1e-5).
(XLA:CPU's rounding depends on the number of threads.)
"""
import os, shutil, sys, tempfile
import jax, jax.numpy as jnp, numpy as np, ml_collections
sys.path.insert(0, os.getcwd())
from experiments import mnist1d_cnn
from train import checkpoint, log
from train.loop import setup, train_and_evaluate

config = mnist1d_cnn.get_config()
config.num_steps, config.log_every, config.eval_every = 30, 5, 10
config.checkpoint.every, config.optimizer.warmup_steps = 10, 5
out = tempfile.mkdtemp()
ref = os.path.join(out, "ref")
train_and_evaluate(config, ref)
run = setup(config)
losses = lambda d: {r["step"]: r["loss"] for r in log.read_metrics(d) if r["split"] == "train"}
ref_losses = losses(ref)
for eps in [float(e) for e in sys.argv[1:] or ["1e-6", "1e-5"]]:
  d = os.path.join(out, f"eps{eps:g}")
  shutil.copytree(ref, d)
  os.remove(f"{d}/results.json")
  shutil.rmtree(f"{d}/checkpoints/30")
  manager = checkpoint.open_manager(d, config.checkpoint)
  state, progress = checkpoint.restore(manager, 20, run.abstract_state)
  stored = ml_collections.ConfigDict(checkpoint.stored_config(d, 20))
  rng = np.random.default_rng(0)
  state = state.replace(params=jax.tree.map(
      lambda p: p * (1 + eps * jnp.asarray(rng.standard_normal(p.shape), p.dtype)), state.params))
  manager.close()
  for s in (10, 20):  # re-saved alone: orbax writes a step only once
    shutil.rmtree(f"{d}/checkpoints/{s}", ignore_errors=True)
  manager = checkpoint.open_manager(d, config.checkpoint)
  checkpoint.save(manager, 20, state, progress, stored, {config.checkpoint.best_metric: 0.0})
  checkpoint.close(manager)
  train_and_evaluate(config, d)
  now = losses(d)
  print("eps", eps, {s: f"{abs(now[s] - ref_losses[s]) / abs(ref_losses[s]):.2e}"
                     for s in sorted(now) if s > 20}, flush=True)
shutil.rmtree(out)
