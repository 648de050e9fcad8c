"""Where a step's time goes, from a `jax.profiler` trace: the ops (GPU kernels, or XLA:CPU's thunks)
that took the most time, per step. `train.tools.bench --profile DIR` writes the trace and adds
these rows to its result; `make gpu` profiles GPT-2 and ResNet-18 so, and its report shows them.

    python -m train.tools.time_by_op DIR [--steps 3] [--top 20]

Reads the newest `perfetto_trace.json.gz` under DIR (jax.profiler.trace(...,
create_perfetto_trace=True)). The device's work is every complete event on the tracks of the
devices' processes (named "/device:..."): a GPU's kernels, one track per stream (only the
"Stream" tracks where there are any, as tracks derived from them would count the same time
again); where there are none (a CPU), the events of XLA:CPU's threads ("tf_XLA...") but their
executors' and thread pools' waits, which span the ops. Each track is summed on its own, and a
track's busy time leaves out its idle gaps (launch overhead shows as the step's time minus it).
"""
import argparse
import collections
import glob
import gzip
import json
import os

from train.tools import positive_int


PROFILED_STEPS = 3  # what train.tools.bench --profile traces
CPU_WAITS = ("ThunkExecutor::", "SlinkyThreadPool::")


def newest_trace(trace_dir: str) -> str:
  paths = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir} (profile with "
                            "jax.profiler.trace(dir, create_perfetto_trace=True))")
  return max(paths, key=os.path.getmtime)


def time_by_op(trace_dir: str, steps: int, top: int = 20, host_fallback: bool = True
               ) -> list[dict]:
  """The `top` (track, op) pairs by total time: ms per step, calls per step, its share of the
  track's busy time, and that busy time per step (a stream's idle gaps are in none of them: set
  it against the step's time). Without device tracks: XLA:CPU's threads if `host_fallback`
  (a CPU run), else none (a GPU trace without its kernels, e.g. CUPTI missing)."""
  with gzip.open(newest_trace(trace_dir)) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  processes, threads = {}, {}
  for e in events:
    if e.get("ph") == "M" and e.get("name") == "process_name":
      processes[e["pid"]] = e["args"]["name"]
    elif e.get("ph") == "M" and e.get("name") == "thread_name":
      threads[(e["pid"], e["tid"])] = e["args"]["name"]
  thread = lambda e: threads.get((e["pid"], e.get("tid")), "")
  device_pids = {pid for pid, name in processes.items() if name.startswith("/device:")}
  # A GPU's kernels are on its stream tracks; tracks derived from them (XLA's ops or modules over
  # the same time), where a trace has them, would count the time twice.
  streams = any(name.startswith("Stream") for (pid, _), name in threads.items()
                if pid in device_pids)
  if device_pids:
    on_device = lambda e: e["pid"] in device_pids and (not streams
                                                       or thread(e).startswith("Stream"))
  elif host_fallback:
    on_device = lambda e: thread(e).startswith("tf_XLA") and not e["name"].startswith(CPU_WAITS)
  else:
    return []
  total_us, per_track = collections.Counter(), collections.defaultdict(collections.Counter)
  calls = collections.Counter()
  for e in events:
    if e.get("ph") != "X" or not on_device(e):
      continue
    track = f"{processes.get(e['pid'], e['pid'])} {thread(e)}".strip()
    total_us[track] += e.get("dur", 0)
    per_track[track][e["name"]] += e.get("dur", 0)
    calls[(track, e["name"])] += 1
  rows = [{"track": track, "op": op, "ms_per_step": round(us / 1e3 / steps, 3),
           "calls_per_step": round(calls[(track, op)] / steps, 1),
           "share_of_track": round(us / total_us[track], 3) if total_us[track] else None,
           "track_ms_per_step": round(total_us[track] / 1e3 / steps, 3)}
          for track, ops in per_track.items() for op, us in ops.items()]
  return sorted(rows, key=lambda r: -r["ms_per_step"])[:top]


def markdown(rows: list[dict]) -> list[str]:
  lines = ["| op | track | ms a step | calls a step | share of the track's busy time | "
           "track busy, ms a step |", "|---|---|---|---|---|---|"]
  for r in rows:
    op = r["op"] if len(r["op"]) <= 80 else r["op"][:77] + "..."
    share = "" if r["share_of_track"] is None else f"{r['share_of_track']:.1%}"
    lines.append(f"| `{op}` | {r['track']} | {r['ms_per_step']} | {r['calls_per_step']} | "
                 f"{share} | {r.get('track_ms_per_step', '')} |")
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("trace_dir")
  parser.add_argument("--steps", type=positive_int, default=PROFILED_STEPS,
                      help="steps the trace holds")
  parser.add_argument("--top", type=positive_int, default=20)
  args = parser.parse_args(argv)
  try:
    rows = time_by_op(args.trace_dir, args.steps, args.top)
  except FileNotFoundError as e:
    parser.error(str(e))
  print("\n".join(markdown(rows)))


if __name__ == "__main__":
  main()
