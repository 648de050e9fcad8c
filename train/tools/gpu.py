"""python -m train.tools.gpu --out DIR [--dry-run] [--budget_s 480] [--items A,B]
   | --readme REPORT.json [MORE.json ...]

Everything a GPU has to show, in one command (`make gpu`): the `gpu` test tier, then every
benchmark of the speed tables, most valuable first, each in its own process with its own timeout
(an item is not started with less of `--budget_s` left than its timeout and 10 s to stop; one past
its timeout is interrupted, then killed). Each result is added to DIR/gpu.json and DIR/gpu.md as
soon as it is measured, with the device, versions, date and command, so a run cut off still
leaves what it measured; DIR/gpu.log holds every command's output. `--items` runs only the named
items (a second call for what the first one's budget cut off). This process never initialises jax
(its items get the whole GPU); the wheels the image lacks are installed before it (`make gpu`).

`--dry-run` runs the same plan at tiny sizes on whatever jax finds (the CPU suite does, so the
plan cannot rot). `--readme REPORT.json [MORE.json ...]` rewrites docs/speed.md's
block between `<!-- gpu:report begin -->` and `<!-- gpu:report end -->` from the reports, merged
(render_markdown), and README.md's `<!-- gpu:targets ... -->` block: the targets' verdicts.
"""
import argparse
import dataclasses
import datetime
import glob
import importlib.metadata
import json
import os
import platform
import re
import shutil
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from train.tools import fmt, length_table
from train.tools.time_by_op import PROFILED_STEPS, markdown

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "torch")
README_BLOCK = ("<!-- gpu:report begin -->", "<!-- gpu:report end -->")  # in docs/speed.md
TARGETS_BLOCK = ("<!-- gpu:targets begin -->", "<!-- gpu:targets end -->")  # in README.md
INTERRUPT_GRACE_S = 10
DRY_S = 120  # the dry run's timeout per item (each takes seconds to half a minute on 2 cores)
PROFILE_TOP = 12  # ops shown for a profiled item
TRACES = os.path.join(tempfile.gettempdir(), "gpu_traces")  # profiles (tens of MB), emptied each run


@dataclasses.dataclass
class Item:
  """One command of the plan. Its output: a JUnit XML where `tests`, else the JSON files it writes
  under the `--out` folder it is given (train.tools.bench's, a peer's, a sweep's)."""
  name: str
  argv: list[str]
  timeout_s: int
  tests: bool = False
  needs_torch: bool = False


# The loop with config.steps_per_call = log_every (100): one dispatch per logged interval.
LOOP_CALLS = "loop mnist1d_cnn 100 steps per call"


def plan(dry_run: bool) -> list[Item]:
  """The items, most valuable first: the tests, then one measurement behind each target (the
  recurrent layers, GPT-2 with cuDNN attention and its peer, ResNet-18 in bfloat16 and its peer,
  the loop), then the rest. A timeout is an item's allowance: an item is not started with less
  time left (`main`). Full sizes are the issue's; the dry run keeps one variant of each group at
  tiny sizes."""
  m = lambda module, *args: [PY, "-m", module, *args]
  peer = lambda name, *args: m(f"experiments.peers.{name}", *args)
  gpt2 = "experiments/gpt2_small.py"
  resnet = ["--config", "experiments/cifar10_resnet18.py", "--mock_data"]
  loop = ["--config", "experiments/mnist1d_cnn.py", "--loop"]
  # --live-report: each outcome (a failure's whole report too) is in gpu.log the moment it is
  # known, and read from there where a timeout leaves no JUnit XML (read_result).
  tier = lambda *k: m("pytest", "-m", "gpu", "-p", "no:xdist", "-q", "--live-report", *k,
                      "tests/test_gpu.py")
  full_run = "default_experiment"  # the tier's slowest test: an item of its own
  # A trace of the steps behind the unmet targets, summarised in the report (the trace itself
  # stays on the machine).
  profile = lambda name: ["--profile", os.path.join(TRACES, name)]
  if dry_run:
    tiny_gpt2 = ["--steps", "1", "--config.batch_size=1", "--config.dataset.seq_len=16",
                 "--config.model.num_layers=1", "--config.model.features=64",
                 "--config.model.num_heads=2"]
    return [
        Item("gpu tests", tier(), DRY_S, tests=True),
        Item("bench_rnn lstm", m("experiments.analysis.bench_rnn", "--size", "tiny", "--steps",
                                 "1", "--dtypes", "float32", "--cells", "lstm"), DRY_S),
        Item("gpt2 xla", m("train.tools.bench", "--config", gpt2, *tiny_gpt2,
                           *profile("gpt2_xla_dry_run")), DRY_S),
        Item("torch gpt2", peer("torch_gpt2", "--steps", "1", "--batch", "1", "--seq_len", "16",
                                "--num_layers", "1", "--features", "64", "--num_heads", "2"),
             DRY_S, needs_torch=True),
        Item("resnet18 bf16", m("train.tools.bench", *resnet, "--steps", "1",
                                "--config.batch_size=2", "--config.model.width=4",
                                "--config.model.dtype=bfloat16"), DRY_S),
        Item("torch resnet18 bf16", peer("torch_resnet18", "--batch", "2", "--width", "4",
                                         "--steps", "1"), DRY_S, needs_torch=True),
        *[Item(name, m("train.tools.bench", *loop, "--steps", "1", "--back_to_back_s", "0.05",
                       "--config.num_steps=30", "--config.log_every=10",
                       "--config.eval_every=10", "--config.optimizer.warmup_steps=5", *more),
               DRY_S)
          for name, more in [("loop mnist1d_cnn", []),
                             (LOOP_CALLS, ["--config.steps_per_call=10"])]],
        Item("bench_seq_len", m("experiments.analysis.bench_seq_len", "--lengths", "16",
                                "--tokens", "32", "--steps", "1"), DRY_S),
        Item("seq2seq_speed", m("experiments.analysis.seq2seq", "speed", "--lengths", "8",
                                "--tokens", "16", "--steps", "1"), DRY_S),
    ]
  rnn = lambda cell: m("experiments.analysis.bench_rnn", "--size", "full", "--steps", "10",
                       "--cells", cell)
  gpt2_kernel = lambda kernel, *more: m("train.tools.bench", "--config", gpt2, "--steps", "10",
                                        f"--config.model.attention_kernel={kernel}", *more)
  resnet_dtype = lambda dtype, *more: m("train.tools.bench", *resnet, "--config.batch_size=512",
                                        f"--config.model.dtype={dtype}", *more)

  # Timeouts: about 1.3 x what each item took on one H200 on 2026-11-27 (docs/speed.md), where
  # it finished; the tier, which did not finish in 180 s, and the sweeps cut off then, more; the
  # profiled items, the loop in calls and bench_rnn (rows added since) about 20-30 s more.
  return [
      Item("gpu tests", tier("-k", f"not {full_run}"), 240, tests=True),
      Item("bench_rnn lstm", rnn("lstm"), 110),
      Item("bench_rnn gru", rnn("gru"), 95),
      Item("gpt2 cudnn", gpt2_kernel("cudnn", *profile("gpt2_cudnn")), 75),
      Item("torch gpt2", peer("torch_gpt2", "--steps", "10"), 75, needs_torch=True),
      Item("resnet18 bf16", resnet_dtype("bfloat16", *profile("resnet18_bf16")), 80),
      Item("torch resnet18 bf16", peer("torch_resnet18", "--batch", "512"), 75,
           needs_torch=True),
      Item("loop mnist1d_cnn", m("train.tools.bench", *loop), 60),
      Item(LOOP_CALLS, m("train.tools.bench", *loop, "--config.steps_per_call=100"), 90),
      Item("gpu full run", tier("-k", full_run), 90, tests=True),
      # The 12 blocks unrolled (as the torch peer runs them) rather than one scanned block.
      Item("gpt2 cudnn unscanned", gpt2_kernel("cudnn", "--config.model.scan_layers=False"), 75),
      Item("gpt2 xla", gpt2_kernel("xla"), 40),
      Item("gpt2 dot_product", gpt2_kernel("dot_product"), 40),
      Item("resnet18 f32", resnet_dtype("float32"), 45),
      Item("torch resnet18 f32", peer("torch_resnet18", "--batch", "512", "--dtype", "float32"),
           65, needs_torch=True),
      Item("bench_seq_len", m("experiments.analysis.bench_seq_len", "--tokens", "16384",
                              "--steps", "3"), 150),
      Item("seq2seq_speed", m("experiments.analysis.seq2seq", "speed", "--lengths",
                              "10,25,50,100,200,400", "--tokens", "16384", "--steps", "3"), 120),
      # The loop again with the batches copied from the host each step (no device-resident split).
      Item("loop mnist1d_cnn host batches", m("train.tools.bench", *loop,
                                              "--config.dataset.on_device=False"), 60),
      Item("resnet18 bf16 remat", resnet_dtype("bfloat16", "--config.model.remat=True"), 55),
  ]


def select(items: list[Item], names: str | None) -> list[Item]:
  """The items named in `names` (comma-separated, in the plan's order), or all of them: a second
  call on a warm machine runs what the first one's budget cut off."""
  if not names:
    return items
  wanted = [n.strip() for n in names.split(",")]
  unknown = [n for n in wanted if n not in {i.name for i in items}]
  if unknown:
    sys.exit(f"error: --items: no item {', '.join(map(repr, unknown))}; the plan's items: "
             f"{', '.join(i.name for i in items)}")
  return [i for i in items if i.name in wanted]


def have(module: str) -> bool:
  """Whether `module` is importable, without importing it here."""
  return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def environment() -> dict:
  """Date, Python, library versions and the device, the last read in a child process."""
  versions = {}
  for lib in LIBRARIES:
    try:
      versions[lib] = importlib.metadata.version(lib)
    except importlib.metadata.PackageNotFoundError:
      versions[lib] = None
  probe = subprocess.run([PY, "-c", "import jax; d = jax.devices(); "
                          "print(len(d), 'x', d[0].device_kind, '|', jax.default_backend())"],
                         capture_output=True, text=True, cwd=REPO)
  device, _, backend = probe.stdout.strip().partition(" | ")
  return {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
          "versions": versions, "device": device or probe.stderr.strip()[-300:],
          "backend": backend or None}


def live_results(log_text: str) -> dict:
  """The tests' outcomes from the `[live]` lines of pytest's `--live-report` (tests/conftest.py):
  what a run cut off before pytest's summary leaves."""
  worst = {}  # one outcome per test, the worst of its phases (a failed teardown after a pass)
  rank = {"passed": 0, "skipped": 1, "failed": 2}
  for outcome, nodeid in re.findall(r"^\[live\] (passed|FAILED|skipped) (.+) \((?:setup|call|"
                                    r"teardown), [\d.]+ s\)$", log_text, re.M):
    name, outcome = nodeid.split("::", 1)[-1], outcome.lower()
    worst[name] = max(outcome, worst.get(name, outcome), key=rank.get)
  return {o: [n for n, w in worst.items() if w == o] for o in rank}


def read_result(item: Item, out: str, junit: str, log_text: str = ""):
  """The item's own output, as JSON-able data; for tests cut off before their JUnit XML, the
  outcomes in `log_text` (the item's part of gpu.log)."""
  if item.tests:
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    try:
      suite = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):  # none written, or half of it (killed while writing)
      if "[live] " in log_text:
        return live_results(log_text)
      raise
    suite = suite if suite.tag == "testsuite" else suite[0]
    cases = {"passed": [], "failed": [], "skipped": []}
    for case in suite.iter("testcase"):
      if case.get("name") is None:  # the test that Ctrl-C interrupted
        continue
      status = ("failed" if case.find("failure") is not None or case.find("error") is not None
                else "skipped" if case.find("skipped") is not None else "passed")
      cases[status].append(case.get("name"))
    return cases
  paths = sorted(glob.glob(os.path.join(out, "*.json")))
  results = []
  for path in paths:
    with open(path) as f:
      results.append(json.load(f))
  return results[0] if len(results) == 1 else results


def shown(item: Item) -> str:
  """The item's command as it can be pasted into a shell."""
  return shlex.join(["python" if a == PY else a for a in item.argv])


def run_item(item: Item, timeout_s: float, work: str, log) -> dict:
  """Runs one item in its own folder; returns its entry for the report."""
  out = os.path.join(work, item.name.replace(" ", "_"))
  os.makedirs(out)
  junit = os.path.join(out, "junit.xml")
  argv = item.argv + ([f"--junitxml={junit}"] if item.tests else ["--out", out])
  command = shown(item)
  entry = {"name": item.name, "command": command, "timeout_s": round(timeout_s)}
  log.write(f"\n===== {item.name}: {command} (timeout {timeout_s:.0f} s)\n")
  log.flush()
  log_start = log.tell()
  start = time.perf_counter()
  # Its own process group, so that the signals below reach the processes it starts too (pytest's
  # CPU resume, torch's compile workers).
  proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
  try:
    returncode = proc.wait(timeout=timeout_s)
    status = "ok" if returncode == 0 else f"exit status {returncode}"
  except subprocess.TimeoutExpired:
    # Ctrl-C first: pytest then writes the JUnit XML of the tests it ran (the sweeps have written
    # their rows already); killed if it does not stop within INTERRUPT_GRACE_S.
    os.killpg(proc.pid, signal.SIGINT)
    try:
      proc.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
      pass
    status = f"timed out after {timeout_s:.0f} s"
  finally:  # nothing of the item outlives it, whatever stopped it (this process's Ctrl-C too)
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.wait()
  entry["seconds"] = round(time.perf_counter() - start, 1)
  try:
    log.flush()
    with open(log.name, errors="replace") as f:
      f.seek(log_start)
      entry["result"] = read_result(item, out, junit, f.read())
  except (OSError, ValueError, IndexError, SyntaxError) as e:  # nothing written, or half of it
    # (a half-written JUnit XML raises xml.etree's ParseError, a SyntaxError)
    entry["result"] = None
    status += "" if status != "ok" else f"; unreadable output ({type(e).__name__})"
  if item.tests and entry["result"] and entry["result"]["failed"] and status == "ok":
    status = "failures"
  entry["status"] = status
  return entry


def targets(report: dict) -> list[dict]:
  """The issues' speed targets, read off the report. A comparison's `ratio` is our time over the
  peer's, met where <= its `bound`; a level's (GPT-2's MFU, the loop's share of the step rate) is
  the value itself, met where >= its bound. `met` is None where something was not measured;
  `partial` says that an item behind it did not finish (a timeout: some rows missing)."""
  items = {i["name"]: i for i in report["items"]}
  result = lambda name: (items.get(name) or {}).get("result")

  def rnn_ms(cell, impls, dtype=None):  # the fastest row: (ms, which, source items)
    rows = (result(f"bench_rnn {cell}") or {}).get("rows", [])
    times = [(r["ms"], f"{r['impl']}, {r['dtype']}") for r in rows if r["cell"] == cell
             and impls(r["impl"]) and dtype in (None, r["dtype"])]
    return (*min(times), [f"bench_rnn {cell}"]) if times else (None, "", [])

  def value(name, key):
    r = result(name)
    return r.get(key) if isinstance(r, dict) else None

  def per_unit(name, key):  # a rate as a time per unit (lower is better)
    rate = value(name, key)
    return (1 / rate, name, [name]) if rate else (None, "", [])

  ours = lambda impl: impl.startswith("ours")
  gpt2 = min((per_unit(f"gpt2 {k}", "tokens_per_s")
              for k in ("cudnn", "cudnn unscanned", "xla", "dot_product")),
             key=lambda t: t[0] or float("inf"))
  comparisons = [
      ("LSTM step <= torch's bf16 autocast", rnn_ms("lstm", ours),
       rnn_ms("lstm", lambda i: i == "torch", "bfloat16"), 1.0),
      ("GRU step <= torch's fastest", rnn_ms("gru", ours), rnn_ms("gru", lambda i: i == "torch"),
       1.0),
      *[(f"{cell.upper()} step <= 0.8 x flax's stock cell", rnn_ms(cell, ours),
         rnn_ms(cell, lambda i: i == "flax stock"), 0.8) for cell in ("lstm", "gru")],
      ("GPT-2 small tokens/s >= torch.compile's", gpt2, per_unit("torch gpt2", "tokens_per_s"),
       1.0),
      ("ResNet-18 bf16 examples/s >= 2 x torch's", per_unit("resnet18 bf16", "examples_per_s"),
       per_unit("torch resnet18 bf16", "examples_per_s"), 0.5),
      ("ResNet-18 f32 examples/s >= torch's", per_unit("resnet18 f32", "examples_per_s"),
       per_unit("torch resnet18 f32", "examples_per_s"), 1.0),
  ]
  partial = lambda sources: any(items[n]["status"] != "ok" for n in sources)
  out = []
  for target, (a, a_name, a_from), (b, b_name, b_from), bound in comparisons:
    ratio = round(a / b, 3) if a and b else None
    out.append({"target": target, "ours": a_name, "peer": b_name, "ratio": ratio,
                "bound": f"<= {bound}", "met": None if ratio is None else ratio <= bound,
                "partial": partial(a_from + b_from)})
  levels = [("GPT-2 small MFU >= 50%", gpt2[1], value(gpt2[1], "mfu"), 0.5),
            *[(f"full run's loop{more} >= 90% of the back-to-back step rate", name,
               value(name, "loop_share"), 0.9)
              for name, more in [("loop mnist1d_cnn", ""), (LOOP_CALLS, ", 100 steps per call")]]]
  out += [{"target": target, "ours": name, "peer": "", "ratio": v, "bound": f">= {bound}",
           "met": None if v is None else v >= bound, "partial": v is not None and partial([name])}
          for target, name, v, bound in levels]
  return out


def render_markdown(report: dict) -> str:
  """The report as Markdown: environment, then a table per kind of item."""
  env = report["environment"]
  versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
  lines = [f"`{report['command']}` on {env['date']}: {env['device']} (Python {env['python']}, "
           f"{versions}){' — a dry run at tiny sizes' if report['dry_run'] else ''}.", ""]
  items = report["items"]
  lines += ["| item | status | seconds | command |", "|---|---|---|---|"]
  lines += [f"| {i['name']} | {i['status']} | {fmt(i.get('seconds'))} | `{i['command']}` |"
            for i in items]
  for i in items:
    r = i.get("result")
    if isinstance(r, dict) and "passed" in r:  # a test item's
      lines += ["", f"{i['name']}: {len(r['passed'])} passed, {len(r['failed'])} failed, "
                    f"{len(r['skipped'])} skipped." + (f" Failed: {', '.join(r['failed'])}."
                                                       if r["failed"] else "")]
  lines += ["", *render_targets(report)]
  bench = [(i["name"], i["result"]) for i in items if isinstance(i.get("result"), dict)
           and "step_ms" in i["result"]]
  if bench:
    lines += ["", "| item | params | batch | dtype | ms/step (synced) | ms/step (back to back) | "
                  "examples/s | tokens/s | compile s | TFLOP/s | MFU | full run's loop: "
                  "examples/s (share of back to back) |", "|---" * 12 + "|"]
    loop = lambda r: "; ".join(
        ([f"{r['loop_examples_per_s']:,} ({r['loop_share']:.0%})"] if "loop_share" in r else [])
        + ([f"in calls of {r['steps_per_call']}: {r['call_step_ms']} ms a step back to back"]
           if "call_step_ms" in r else []))
    lines += [f"| {name} | {r['params']:,} | {r['batch']} | {r['dtype']} | {r['step_ms']} | "
              f"{r['back_to_back_ms']} | {fmt(r['examples_per_s'], ',')} | "
              f"{fmt(r.get('tokens_per_s'), ',')} | {r['compile_s']} | "
              f"{fmt(r.get('tflops_per_s'))} | {fmt(r.get('mfu'), '.1%')} | {loop(r)} |"
              for name, r in bench]
  for i in items:
    r = i.get("result")
    if i["name"].startswith("bench_rnn") and r:
      lines += ["", f"Recurrent layers ({i['name']}), sizes {r['size']}:", "",
                "| cell | dtype | impl | ms/step | tokens/s | its time / ours (scan) |",
                "|---|---|---|---|---|---|"]
      lines += [f"| {x['cell']} | {x['dtype']} | {x['impl']} | {x['ms']} | "
                f"{x['tokens_per_s']:,} | {x['time_vs_ours']} |" for x in r["rows"]]
    if isinstance(r, dict) and r.get("time_by_op_error"):
      lines += ["", f"{i['name']}'s profile failed: {r['time_by_op_error']}"]
    if isinstance(r, dict) and r.get("time_by_op"):
      lines += ["", f"Where {i['name']}'s step goes (a trace of {PROFILED_STEPS} steps, the "
                    f"{PROFILE_TOP} longest ops; `train.tools.time_by_op`):", "",
                *markdown(r["time_by_op"][:PROFILE_TOP])]
    if i["name"] in ("bench_seq_len", "seq2seq_speed") and r:
      lines += ["", "Training tokens/s against sequence length:", "", *length_table(r["rows"])]
  return "\n".join(lines) + "\n"


def render_targets(report: dict) -> list[str]:
  """The targets' table (`targets`), as Markdown lines."""
  verdict = lambda t: ({True: "met", False: "not met", None: "not measured"}[t["met"]]
                       + (" (an item behind it timed out: rows missing)" if t["partial"] else ""))
  return ["Targets (ratio: our time over the peer's; for MFU and the loop, the value):", "",
          "| target | ours | peer | ratio | bound | verdict |", "|---|---|---|---|---|---|",
          *[f"| {t['target']} | {t['ours']} | {t['peer']} | {fmt(t['ratio'])} | {t['bound']} | "
            f"{verdict(t)} |" for t in targets(report)]]


def write_report(report: dict, out: str) -> None:
  for name, text in [("gpu.json", json.dumps(report, indent=2)),
                     ("gpu.md", render_markdown(report))]:
    tmp = os.path.join(out, f".{name}.tmp")
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, os.path.join(out, name))


def merge(reports: list[dict]) -> dict:
  """One report from a first call and the calls that ran what it was cut off from (`--items`), all
  on the same kind of device: an item measured again replaces the earlier entry; the environment
  (date, versions) is the first call's."""
  devices = {r["environment"]["device"] for r in reports}
  if len(devices) > 1:
    sys.exit(f"error: --readme: the reports come from different devices "
             f"({', '.join(sorted(devices))}); rerun the items on one kind")
  items = {}
  for report in reports:
    for item in report["items"]:
      if item["name"] not in items or not item["status"].startswith(("not run", "skipped")):
        items[item["name"]] = item
  return {**reports[0], "command": " ; ".join(r["command"] for r in reports),
          "items": list(items.values())}


def replace_block(path: str, block: tuple[str, str], content: str) -> None:
  """`path` with the text between the `block` markers replaced by `content`."""
  with open(path) as f:
    text = f.read()
  begin, end = block
  if begin not in text or end not in text:
    sys.exit(f"error: {path} has no {begin} ... {end} block")
  head, rest = text.split(begin, 1)
  _, tail = rest.split(end, 1)
  with open(path, "w") as f:
    f.write(f"{head}{begin}\n{content}{end}{tail}")


def rewrite_readme(report_paths: list[str], speed: str = os.path.join(REPO, "docs", "speed.md"),
                   readme: str = os.path.join(REPO, "README.md")) -> None:
  """docs/speed.md's GPU block: the whole report; README.md's: the targets' verdicts."""
  reports = []
  for path in report_paths:
    try:
      with open(path) as f:
        reports.append(json.load(f))
    except (OSError, ValueError) as e:
      sys.exit(f"error: --readme {path}: {type(e).__name__}: {e}")
  report = merge(reports)
  replace_block(speed, README_BLOCK, render_markdown(report))
  env = report["environment"]
  replace_block(readme, TARGETS_BLOCK, "\n".join([
      f"`make gpu` on {env['date']}, {env['device']} (every table, the commands and versions: "
      "[docs/speed.md](docs/speed.md#on-a-gpu)).", "", *render_targets(report)]) + "\n")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", help="where gpu.json, gpu.md and gpu.log go")
  parser.add_argument("--dry-run", action="store_true", help="tiny sizes, any device")
  parser.add_argument("--budget_s", type=float, default=480, help="for all items together")
  parser.add_argument("--items", help="only these items (comma-separated names)")
  parser.add_argument("--readme", metavar="REPORT.json", nargs="+",
                      help="rewrite docs/speed.md's GPU block from these reports (merged)")
  args = parser.parse_args(argv)
  if args.readme:
    rewrite_readme(args.readme)
    return
  if not args.out:
    parser.error("--out is required")
  items = select(plan(args.dry_run), args.items)
  shutil.rmtree(TRACES, ignore_errors=True)
  if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell:
    # the items would inherit the ignored Ctrl-C that stops them at their timeout
    signal.signal(signal.SIGINT, signal.default_int_handler)
  deadline = time.perf_counter() + args.budget_s
  os.makedirs(args.out, exist_ok=True)
  command = "python -m train.tools.gpu " + " ".join(sys.argv[1:] if argv is None else argv)
  report = {"command": command, "dry_run": args.dry_run, "environment": environment(),
            "items": []}
  write_report(report, args.out)
  torch = have("torch")
  work = tempfile.mkdtemp(prefix="gpu_items_")
  with open(os.path.join(args.out, "gpu.log"), "w") as log:
    for item in items:
      left = deadline - time.perf_counter()
      if item.needs_torch and not torch:
        entry = {"name": item.name, "command": shown(item), "status": "skipped: no torch"}
      elif left < item.timeout_s + INTERRUPT_GRACE_S:  # a later, shorter item may still fit
        entry = {"name": item.name, "command": shown(item), "status": "not run: out of time"}
      else:
        entry = run_item(item, item.timeout_s, work, log)
      report["items"].append(entry)
      write_report(report, args.out)
      print(f"{entry['name']:22} {entry['status']}", flush=True)
  shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
