"""A/B of RNNLayer's written-out backward pass (this tree) against jax's transpose of the scan
(nets/recurrent.py of commit 7747a97), one jitted gradient of mean(h**2), interleaved, median ms.

  git show 7747a97:nets/recurrent.py > /tmp/recurrent_7747a97.py
  python docs/registry/rnn_backward_ab.py /tmp/recurrent_7747a97.py B T D H CELL DTYPE UNROLL REPS

Results: docs/registry/rnn_backward_2026-11-27.md.
"""
import importlib.util
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def load(path, name):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


def main(old_path, B, T, D, H, cell, dtype, unroll, reps):
  from nets import recurrent
  x = jax.random.normal(jax.random.key(1), (int(B), int(T), int(D)))
  steps = {}
  for name, module in (("autodiff", load(old_path, "recurrent_old")), ("written out", recurrent)):
    layer = module.RNNLayer(int(H), cell, dtype=jnp.dtype(dtype), unroll=int(unroll))
    params = layer.init(jax.random.key(0), x)["params"]
    grad = jax.jit(jax.grad(
        lambda p, x, layer=layer: jnp.mean(jnp.square(layer.apply({"params": p}, x)[0]))))
    jax.block_until_ready(grad(params, x))
    steps[name] = (grad, params)
  times = {name: [] for name in steps}
  for _ in range(int(reps)):
    for name, (grad, params) in steps.items():
      start = time.perf_counter()
      jax.block_until_ready(grad(params, x))
      times[name].append(time.perf_counter() - start)
  ms = {name: round(float(np.median(t)) * 1e3, 1) for name, t in times.items()}
  print(f"| {B}, {T}, {D}, {H} | {cell} | {dtype} | {unroll} | {ms['autodiff']} | "
        f"{ms['written out']} | {ms['written out'] / ms['autodiff']:.2f} |")


if __name__ == "__main__":
  main(*sys.argv[1:])
