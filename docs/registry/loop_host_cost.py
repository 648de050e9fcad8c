"""python docs/registry/loop_host_cost.py [field=value ...], from the repository root (the default
experiment). The real train loop with the device's work removed (a no-op step of the same signature), with a
timer around each piece: the host cost per step and per event."""
import collections, json, os, sys, tempfile, time, functools
import numpy as np
import jax, jax.numpy as jnp
sys.path.insert(0, os.getcwd())
import importlib.util
spec = importlib.util.spec_from_file_location("exp", "experiments/mnist1d_cnn.py")
exp = importlib.util.module_from_spec(spec); spec.loader.exec_module(exp)
config = exp.get_config()
for a in sys.argv[1:]:
  k, v = a.split("="); config.update_from_flattened_dict({k: type(config[k] if "." not in k else config[k.split(".")[0]][k.split(".")[1]])(v)})
from train import loop, data, log, faults, checkpoint, sharding
P = time.perf_counter
T = collections.defaultdict(list)
C = collections.defaultdict(list)
def timed(name, fn):
  @functools.wraps(fn)
  def w(*a, **k):
    s, c = P(), time.thread_time(); r = fn(*a, **k); T[name].append(P() - s); C[name].append(time.thread_time() - c); return r
  return w
run = loop.setup(config)
real = os.environ.get("REAL_STEP")
if not real:
  ss = jax.tree.map(lambda a: a.sharding, run.abstract_state)
  def noop(state, batch):
    x = batch["x"] if isinstance(batch, dict) else batch
    s = jnp.sum(x).astype(jnp.float32)
    return state.replace(step=state.step + 1), {"accuracy": s, "grad_norm": s, "loss": s, "lr": s}
  run.train_step = jax.jit(noop, in_shardings=(ss, run.batch_sharding) if not os.environ.get("NOSHARD") else None,
                           out_shardings=(ss, sharding.replicated(run.mesh)) if not os.environ.get("NOSHARD") else None, donate_argnums=0)
  # config.steps_per_call > 1: the same no-op step scanned over the call's batches
  run.multi_step = jax.jit(lambda state, batches: jax.lax.scan(noop, state, batches),
                           in_shardings=(ss, sharding.stacked(run.batch_sharding)),
                           out_shardings=(ss, sharding.replicated(run.mesh)), donate_argnums=0)
run.train_step = timed("train_step", run.train_step)
class TimedCalls:  # the loop compiles each call size ahead (multi_step.lower(...).compile())
  def __init__(self, jitted): self.jitted = jitted
  def lower(self, *args):
    lowered = self.jitted.lower(*args)
    return type("Lowered", (), {"compile": lambda _: timed("multi_step", lowered.compile())})()
run.multi_step = TimedCalls(run.multi_step)
orig_prefetch = data.prefetch_to_device
def prefetch(*a, **k):
  g = orig_prefetch(*a, **k)
  class It:
    def __iter__(self): return self
    def __next__(self):
      s, c = P(), time.thread_time(); r = next(g); T["next(batches)"].append(P() - s); C["next(batches)"].append(time.thread_time() - c); return r
  return It()
loop.data.prefetch_to_device = prefetch
loop.faults.summarize = timed("summarize", faults.summarize)
loop.faults.check_state = timed("check_state", faults.check_state)
loop.evaluate = timed("evaluate", loop.evaluate)
loop.checkpoint.save = timed("checkpoint.save", checkpoint.save)
log.Logger.write = timed("logger.write", log.Logger.write)
log.Logger.advance = timed("logger.advance", log.Logger.advance)
with tempfile.TemporaryDirectory() as wd:
  t0, c0 = P(), time.thread_time()
  loop.train(run, config, wd)
  total, ctotal = P() - t0, time.thread_time() - c0
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
tr = [r for r in rows if r["split"] == "train"]
span = tr[-1]["time"] - tr[0]["time"]; nsteps = tr[-1]["step"] - tr[0]["step"]
print(f"loop: {nsteps} steps in {span:.3f} s = {span / nsteps * 1e6:.1f} us/step (logged span); train() total {total:.2f} s, main-thread CPU {ctotal:.2f} s")
for k, v in T.items():
  v = np.array(v) * 1e6; c = np.array(C[k]) * 1e6
  print(f"  {k:16s} n={len(v):5d} wall: total {v.sum()/1e6:6.3f} s median {np.median(v):7.1f} first {v[0]/1e3:7.1f} ms | thread CPU: total {c.sum()/1e6:6.3f} s median {np.median(c):7.1f} us, mean excl. first {c[1:].mean():7.1f} us, first {c[0]/1e3:7.1f} ms")
acc = sum(sum(v) for v in T.values())
# per-step time between syncs from train rows' examples_per_s
eps = [r["examples_per_s"] for r in tr[1:]]
print(f"  between syncs: median {config.batch_size / np.median(eps) * 1e6:.1f} us/step")

after = [config.batch_size / r["examples_per_s"] * 1e6 for r in tr if r["step"] % 1000 == 100]
other = [config.batch_size / r["examples_per_s"] * 1e6 for r in tr if r["step"] % 1000 not in (100, 0)]
print(f"  us/step in the 100 steps after a save: {np.median(after):.1f}, other intervals: {np.median(other):.1f}")
