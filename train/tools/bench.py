"""python -m train.tools.bench --config experiments/X.py [--steps 20] [--out runs/bench] [--profile DIR]
[--loop] [--config.field=value ...]

Times the real train step of an experiment (the jitted, sharded step `train.loop.setup` builds, on
one batch from its own pipeline kept on the devices, so data loading is not timed) after a warm-up:
  - step time, each step synchronised (median) and back to back (one sync at the end, mean);
  - examples/s and, for sequence tasks, tokens/s; compile time; peak device memory (GPU/TPU) and
    XLA's memory estimate of the compiled step;
  - FLOPs per step from XLA's cost analysis of the step as lowered (`lowered_flops`: once
    compiled for a GPU, the matrix products and convolutions handed to cuBLAS and cuDNN are
    custom calls, which the compiled program's count leaves out), and analytically where known
    (Transformer LM: 6N + 12·L·d·T per token, N the parameters without the position table), with
    TFLOP/s and MFU
    (not from XLA's count when the program has a loop, e.g. an RNN's scan over time: XLA counts a
    loop body once)
    against the devices' dense bf16 peak (`PEAK_TFLOPS` per chip, times the number of devices;
    none for CPUs, so no MFU there).
Writes OUT/<experiment>.json and appends a Markdown row (device, date, command) to OUT/bench.md.
`--loop` then trains the experiment for real (a temporary workdir) and adds the loop's rate: examples
per second from its first logged step to its last, evaluation, logging, checkpointing and the input
pipeline included (the first, compiling, interval and the final test not), and its share of the
back-to-back step rate (`loop_share`: how busy the loop keeps the device), that rate timed before
and after the run (`--back_to_back_s` each, 2 by default) and averaged.
`--profile DIR` writes a `jax.profiler` trace of 3 steps (open with TensorBoard or Perfetto) and
adds the ops that took the most time (`time_by_op`: GPU kernels, or XLA:CPU's thunks).
`--mock_data` times the step on TFDS's mock data of the dataset's shapes: for a dataset that is not
prepared on this machine (cifar10 without a download, say); the speed of a step does not depend on
the pixel values.
"""
import contextlib
import datetime
import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from absl import app, flags, logging
from ml_collections import config_flags

from train import log
from train.config import ConfigError, one_line, parse_flags
from train.tools import fmt
from train.tools.time_by_op import PROFILED_STEPS, markdown, time_by_op
from train.workdir import check_writable

# Dense bf16 TFLOP/s per chip, from the vendors' data sheets (without sparsity).
PEAK_TFLOPS = {  # the first name found in the device kind counts: variants before their family
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,  # SXM
    "H200 NVL": 835.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
    "TPU v4": 275.0,
    "TPU v5 lite": 197.0,
    "TPU v5p": 459.0,
    "TPU v6 lite": 918.0,
}


def peak_tflops(device_kind: str) -> float | None:
  return next((v for k, v in PEAK_TFLOPS.items() if k.lower() in device_kind.lower()), None)


def mfu(flops_per_step: float, step_ms: float, peak_tflops_per_device: float | None,
        devices: int) -> float | None:
  """Model FLOPs utilisation: the FLOP/s achieved over the devices' combined peak FLOP/s."""
  if not (flops_per_step and peak_tflops_per_device):
    return None
  achieved = flops_per_step / (step_ms * 1e-3)  # FLOP/s
  return achieved / (peak_tflops_per_device * 1e12 * devices)


def median_ms(step, steps: int) -> float:
  """Median wall time of `steps` calls of `step` (which must synchronise), after 2 warm-ups."""
  step()
  step()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  return float(np.median(times) * 1e3)


def jax_step(module: nn.Module, x_BTD, lr=1e-3):
  """A jitted SGD step of `module` on mean(outputs**2); returns a no-argument callable."""
  # Jitted: on a GPU, init op by op compiles and launches each small op on its own (seconds).
  params = jax.jit(module.init)(jax.random.PRNGKey(0), x_BTD)["params"]

  def loss(params, x_BTD):
    out = module.apply({"params": params}, x_BTD)
    h_BTH = out[0] if isinstance(out, tuple) else out
    return jnp.mean(h_BTH.astype(jnp.float32) ** 2)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(params, x_BTD):  # x is an argument: a closed-over array would be baked into the program
    grads = jax.grad(loss)(params, x_BTD)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)

  state = {"params": params}

  def run():
    state["params"] = step(state["params"], x_BTD)
    jax.block_until_ready(state["params"])

  return run


def analytic_flops(config, num_params: int, batch_size: int, seq_len: int) -> float | None:
  """Training FLOPs per step of a Transformer LM (Kaplan et al. 2020; PaLM appendix B):
  6 per parameter per token, plus 12·L·d·T per token for attention's QK^T and AV."""
  m = config.model
  if m.name != "transformer_lm":
    return None
  position_table = m.max_len * m.features if m.pos_encoding == "learned" else 0
  per_token = 6 * (num_params - position_table) + 12 * m.num_layers * m.features * seq_len
  return per_token * batch_size * seq_len


def cost(program) -> dict:
  """XLA's cost analysis of a jax Lowered or Compiled program, as one dict ({} if unavailable)."""
  analysis = program.cost_analysis()
  if isinstance(analysis, list):  # older jax: one dict per program
    analysis = analysis[0] if analysis else {}
  return analysis or {}


def lowered_flops(lowered) -> float | None:
  """XLA's FLOP count of a step as lowered: the whole step's, before XLA's rewrites (compiled for
  a GPU, the matrix products and convolutions handed to cuBLAS and cuDNN become custom calls,
  which the compiled program's count leaves out) and before it is partitioned over devices.
  A GPU backend is a PJRT plugin, for which jax does not implement `Lowered.cost_analysis`; the
  lowered module is then analysed by the CPU client (jax's private `hlo_module_cost_analysis`:
  the count of an HLO module's ops does not depend on the backend)."""
  flops = cost(lowered).get("flops")
  if flops is None:
    try:
      from jax._src.lib import _jax  # noqa: PLC0415
      module = lowered.compiler_ir("hlo").as_hlo_module()
      flops = _jax.hlo_module_cost_analysis(jax.devices("cpu")[0].client, module).get("flops")
    except Exception:  # noqa: BLE001  a private API: no count rather than no benchmark
      flops = None
  return flops


BACK_TO_BACK_S = 2.0


def bench(config, steps: int, profile_dir: str | None = None, with_loop: bool = False,
          back_to_back_s: float = BACK_TO_BACK_S) -> dict:
  """Times `config`'s train step; returns the numbers `main` records (`with_loop`: and
  `loop_rate`'s)."""
  from train import data, loop  # noqa: PLC0415  after flags: a fast --help

  run = loop.setup(config)
  state = run.init()
  batch, _ = next(data.prefetch_to_device(run.train_iter, run.batch_sharding, run.train_data))
  num_params = sum(p.size for p in jax.tree.leaves(state.params))

  t = time.perf_counter()
  lowered = run.train_step.lower(state, batch)
  compiled = lowered.compile()
  compile_s = time.perf_counter() - t
  box = {"state": state, "batch": batch}
  del state  # donated: box holds the live one

  def one_step():
    box["state"], metrics = compiled(box["state"], box["batch"])
    jax.block_until_ready(metrics)

  step_ms = median_ms(one_step, steps)

  def back_to_back(step=compiled, batch_key="batch", per_call=1) -> float:
    """ms a step over at least `back_to_back_s` of steps: a rate that the loop's (a whole run)
    compares with."""
    n = max(steps, int(np.ceil(back_to_back_s * 1e3 / step_ms / per_call)))
    t = time.perf_counter()
    for _ in range(n):
      box["state"], metrics = step(box["state"], box[batch_key])
    jax.block_until_ready((box["state"], metrics))
    return (time.perf_counter() - t) / n / per_call * 1e3

  back_to_back_ms = back_to_back()
  calls = {}
  if config.steps_per_call > 1:  # the same step scanned in calls of n: what the loop then runs
    n = config.steps_per_call
    box["batches"] = next(data.prefetch_to_device(run.train_iter, run.batch_sharding,
                                                  run.train_data, steps=[n]))[0]
    multi_step = run.multi_step.lower(box["state"], box["batches"]).compile()
    calls = {"steps_per_call": n,
             "call_step_ms": round(back_to_back(multi_step, "batches", n), 3)}

  device = jax.devices()[0]
  examples = config.batch_size
  # Sequence tasks predict at every position: tokens = the targets' B x T.
  tokens = int(np.prod(batch["label"].shape)) if run.task in ("sequence", "seq2seq") else None
  xla_flops = lowered_flops(lowered)
  formula = analytic_flops(config, num_params, *batch["label"].shape) if tokens else None
  # XLA counts a loop body once (a scan over time steps, layers or micro-batches), so its count
  # of a program with a loop is too low to derive TFLOP/s from.
  has_loop = re.search(r"\bwhile\(", compiled.as_text()) is not None
  flops = formula or (None if has_loop else xla_flops)
  peak = peak_tflops(device.device_kind)
  best_ms = min(step_ms, back_to_back_ms)
  tflops = flops / best_ms / 1e9 if flops else None
  utilisation = mfu(flops, best_ms, peak, jax.device_count())
  memory = compiled.memory_analysis()
  stats = device.memory_stats() or {}
  result = {
      "model": config.model.name,
      "params": int(num_params),
      "batch": examples,
      "tokens_per_step": tokens,
      "devices": jax.device_count(),
      "device": device.device_kind,
      "mesh": dict(run.mesh.shape),
      "dtype": config.model.get("dtype", "float32"),
      "step_ms": round(step_ms, 3),
      "back_to_back_ms": round(back_to_back_ms, 3),
      "back_to_back_s": back_to_back_s,  # the window timed (the same after a --loop run)
      "examples_per_s": round(examples / best_ms * 1e3, 1),
      "tokens_per_s": round(tokens / best_ms * 1e3) if tokens else None,
      "compile_s": round(compile_s, 2),
      "peak_memory_gb": round(stats["peak_bytes_in_use"] / 2**30, 3)
                        if "peak_bytes_in_use" in stats else None,
      "xla_memory_gb": round((memory.temp_size_in_bytes + memory.argument_size_in_bytes
                              + memory.output_size_in_bytes - memory.alias_size_in_bytes)
                             / 2**30, 3) if memory else None,
      "xla_flops_per_step": xla_flops,
      "xla_counts_a_loop_once": has_loop,
      "analytic_flops_per_step": formula,
      "tflops_per_s": float(f"{tflops:.3g}") if tflops else None,
      "peak_tflops": peak,
      "mfu": round(utilisation, 4) if utilisation else None,
  }
  result.update(calls)
  if profile_dir:  # after the timings, and never at their cost
    try:
      with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
        for _ in range(PROFILED_STEPS):
          one_step()
      result["time_by_op"] = time_by_op(profile_dir, PROFILED_STEPS,
                                        host_fallback=device.platform == "cpu")
    except Exception as e:  # noqa: BLE001  a profiler that fails must not lose the step's times
      result["time_by_op_error"] = f"{type(e).__name__}: {e}"[:300]
  if with_loop:
    # The bench's arrays wait on the host while the run trains (it needs the device's memory).
    shardings = jax.tree.map(lambda a: a.sharding, box)
    box.update(jax.device_get(box))
    del run, batch, lowered

    def again() -> float:
      box.update(jax.device_put(dict(box), shardings))
      return back_to_back()

    result.update(loop_rate(config, back_to_back_ms, again))
  return result


def loop_rate(config, before_ms: float, back_to_back: Callable[[], float]) -> dict:
  """Trains `config` in a temporary workdir; its examples/s between the first and the last logged
  train steps (metrics.jsonl's times), and that rate's share of the back-to-back step rate, timed
  before (`before_ms`) and again after the run (`back_to_back()`) and averaged: on a shared machine
  the step's speed drifts over a run's half minute."""
  from train.loop import train_and_evaluate  # noqa: PLC0415

  with tempfile.TemporaryDirectory() as workdir:
    train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rows = [r for r in map(json.loads, f) if r["split"] == "train"]
  first, last = rows[0], rows[-1]
  if last["step"] == first["step"]:
    raise ConfigError(f"--loop needs two logged train steps: num_steps={config.num_steps}, "
                      f"log_every={config.log_every}")
  rate = (last["step"] - first["step"]) * config.batch_size / (last["time"] - first["time"])
  after_ms = back_to_back()
  return {"loop_steps": last["step"] - first["step"], "loop_examples_per_s": round(rate, 1),
          "back_to_back_after_ms": round(after_ms, 3),
          "loop_share": round(rate * (before_ms + after_ms) / 2 / 1e3 / config.batch_size, 3)}


def length_sweep(models: dict[str, Callable], lengths: list[int], tokens: int, steps: int,
                 path: str, command: str) -> dict:
  """Training tokens/s of each model against sequence length at `tokens` tokens per batch
  (B = tokens // T): the lecture's parallelism claim (a recurrent net takes its T steps one after
  another, attention all positions at once). `models[name](length, batch)` gives (module, inputs)
  for `jax_step`; the rows are written to `path` after each point."""
  rows = []
  for length in lengths:
    batch = max(1, tokens // length)
    for name, make in models.items():
      module, x = make(length, batch)
      params = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x))["params"]
      ms = median_ms(jax_step(module, x), steps)
      rows.append({"model": name, "length": length, "batch": batch, "ms": round(ms, 2),
                   "tokens_per_s": round(batch * length / ms * 1e3),
                   "params": sum(p.size for p in jax.tree.leaves(params))})
      print(f"T={length:5} B={batch:4} {name:14} {ms:10.1f} ms "
            f"{rows[-1]['tokens_per_s']:>10,} tok/s", flush=True)
      record = write_rows(path, command, rows)
  return record


def write_rows(path: str, command: str, rows: list[dict], **fields) -> dict:
  """Writes {date, device, command, **fields, rows} to the JSON file `path`, atomically. The
  sweeps (bench_rnn, bench_seq_len, seq2seq speed) call it after each row they measure, so that a
  run cut off (`make gpu`'s timeouts) keeps what it measured."""
  record = {"date": datetime.date.today().isoformat(), "device": jax.devices()[0].device_kind,
            "command": command, **fields, "rows": rows}
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  log.write_json(path, record)
  return record


def record(result: dict, experiment: str, command: str, out: str) -> None:
  result = {"experiment": experiment, "date": datetime.date.today().isoformat(),
            "command": command, **result}
  os.makedirs(out, exist_ok=True)
  devices = f"_{result['devices']}dev" if result["devices"] > 1 else ""
  with open(os.path.join(out, f"{experiment}{devices}.json"), "w") as f:
    json.dump(result, f, indent=2)
  path = os.path.join(out, "bench.md")
  fresh = not os.path.exists(path)
  rate = lambda v: "" if v is None else format(v, ",.0f" if v >= 100 else ".3g")
  with open(path, "a") as f:
    if fresh:
      f.write("| date | device | experiment | params | batch | dtype | ms/step (synced) | "
              "ms/step (back to back) | examples/s | tokens/s | compile s | TFLOP/s | MFU | "
              "command |\n" + "|---" * 14 + "|\n")
    f.write(f"| {result['date']} | {result['devices']} x {result['device']} | {experiment} | "
            f"{result['params']:,} | {result['batch']} | {result['dtype']} | {result['step_ms']} | "
            f"{result['back_to_back_ms']} | {rate(result['examples_per_s'])} | "
            f"{fmt(result['tokens_per_s'], ',')} | {result['compile_s']} | "
            f"{fmt(result['tflops_per_s'])} | {fmt(result['mfu'], '.1%')} | `{command}` |\n")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  FLAGS = flags.FLAGS
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  experiment = os.path.splitext(os.path.basename(config_flags.get_config_filename(FLAGS["config"])))[0]
  try:
    if FLAGS.steps < 1:
      raise ConfigError(f"--steps={FLAGS.steps} must be >= 1")
    if not 0 < FLAGS.back_to_back_s < float("inf"):
      raise ConfigError(f"--back_to_back_s={FLAGS.back_to_back_s} must be a positive number")
    try:
      FLAGS.config.keys()  # config_flags loads the file lazily: a missing or broken one fails here
    except Exception as e:  # noqa: BLE001  whatever the user's config file raises
      raise ConfigError(f"cannot load --config: {one_line(e)}") from e
    check_writable(FLAGS.out, "--out")  # before the timing, not after it
    with tfds.testing.mock_data(num_examples=4 * FLAGS.config.batch_size) if FLAGS.mock_data \
        else contextlib.nullcontext():
      result = bench(FLAGS.config, FLAGS.steps, FLAGS.profile, with_loop=FLAGS.loop,
                     back_to_back_s=FLAGS.back_to_back_s)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  env = f"XLA_FLAGS={os.environ['XLA_FLAGS']} " if "XLA_FLAGS" in os.environ else ""
  record(result, experiment, f"{env}python -m train.tools.bench {' '.join(sys.argv[1:])}", FLAGS.out)
  print(json.dumps(result, indent=2))
  if "time_by_op" in result:
    print("\n".join(["", "Where a step's time goes:", *markdown(result["time_by_op"])]))


if __name__ == "__main__":  # flags defined here only: importing the helpers defines none
  config_flags.DEFINE_config_file("config", None, "Experiment config file.")
  flags.DEFINE_integer("steps", 20, "Timed steps (after 2 warm-up steps).")
  flags.DEFINE_string("out", "runs/bench", "Where the JSON and the Markdown table go.")
  flags.DEFINE_string("profile", None, "Write a jax.profiler trace of 3 steps here, and add the "
                      "ops that took the most time to the result.")
  flags.DEFINE_bool("mock_data", False, "Use TFDS mock data of the dataset's shapes.")
  flags.DEFINE_bool("loop", False, "Then train for real and add the loop's examples/s.")
  flags.DEFINE_float("back_to_back_s", BACK_TO_BACK_S, "Seconds of steps timed back to back (at "
                     "least --steps); with --loop, before and again after the run.")
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=parse_flags)
