"""python docs/registry/steps_in_a_scan_cpu.py, from the repository root: what a step costs alone
and inside a lax.scan on this backend (config.steps_per_call > 1 scans the train step). XLA:CPU
runs convolutions inside a loop far slower than alone (jax#12868); dense layers do not pay it."""
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.getcwd())
from experiments import mnist1d_cnn  # noqa: E402
from train import data, loop, sharding  # noqa: E402


def ms_per_call(f, *args, n=20):
  out = f(*args)
  jax.block_until_ready(out)
  t = time.perf_counter()
  for _ in range(n):
    out = f(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / n * 1e3


K = 10
for kind, layer, x in [("conv 5, 64 -> 64 channels, [100, 40, 64]", nn.Conv(64, (5,), strides=2),
                        jnp.ones((100, 40, 64))),
                       ("dense 256 -> 256, [100, 256]", nn.Dense(256), jnp.ones((100, 256)))]:
  params = layer.init(jax.random.key(0), x)
  grad = lambda p, x: jax.grad(lambda p: jnp.sum(layer.apply(p, x) ** 2))(p)
  update = lambda p, x: (jax.tree.map(lambda a, g: a - 1e-6 * g, p, grad(p, x)), None)
  alone = jax.jit(grad)
  scanned = jax.jit(lambda p, xs: jax.lax.scan(update, p, xs)[0])
  print(f"{kind}: gradient {ms_per_call(alone, params, x):.2f} ms alone, "
        f"{ms_per_call(scanned, params, jnp.stack([x] * K)) / K:.2f} ms a step in a scan of {K}")

run = loop.setup(mnist1d_cnn.get_config())
box = {"state": run.init()}
drawn = run.train_iter.with_states()
ids = np.stack([next(drawn)[0] for _ in range(K)])
one = data.pipeline.gather(run.train_data, ids[0], run.batch_sharding)
stacked = data.pipeline.gather(run.train_data, ids, sharding.stacked(run.batch_sharding))


def step(fn, batch):
  box["state"], metrics = fn(box["state"], batch)
  return metrics


print(f"default experiment: train step {ms_per_call(step, run.train_step, one):.2f} ms alone, "
      f"{ms_per_call(step, run.multi_step, stacked) / K:.2f} ms a step in a call of {K} "
      f"(jax {jax.__version__}, {jax.devices()[0].device_kind})")
