"""`make gpu`'s script, dry run: the whole plan at tiny sizes on the CPU, so that it cannot rot
(the PyTorch items too, where torch is installed: `make test-torch`)."""
import importlib.util
import json
import os
import subprocess
import sys
import time

import jax
import pytest

from train.tools import gpu


@pytest.mark.slow  # every item of the plan in its own process: `make test-slow`
def test_dry_run_measures_every_item_and_renders_the_report(tmp_path):
  gpu.main(["--out", str(tmp_path), "--dry-run"])
  report = json.loads((tmp_path / "gpu.json").read_text())
  items = {i["name"]: i for i in report["items"]}
  assert list(items) == [i.name for i in gpu.plan(dry_run=True)]
  torch = importlib.util.find_spec("torch") is not None
  for name, item in items.items():
    expected = "ok" if torch or not name.startswith("torch ") else "skipped: no torch"
    assert item["status"] == expected, (name, item["status"])
  if jax.default_backend() != "gpu":
    assert items["gpu tests"]["result"]["passed"] == []  # every gpu test skips on a CPU
  assert items["gpt2 xla"]["result"]["step_ms"] > 0 and items["gpt2 xla"]["result"]["time_by_op"]
  assert ("torch" in {r["impl"] for r in items["bench_rnn lstm"]["result"]["rows"]}) == torch
  if torch:
    assert items["torch gpt2"]["result"]["params"] == items["gpt2 xla"]["result"]["params"]
  loop = items["loop mnist1d_cnn"]["result"]
  assert loop["loop_steps"] == 20 and loop["loop_share"] > 0
  calls = items[gpu.LOOP_CALLS]["result"]
  assert calls["loop_steps"] == 20 and calls["steps_per_call"] == 10 and calls["call_step_ms"] > 0
  markdown = (tmp_path / "gpu.md").read_text()
  assert markdown == gpu.render_markdown(report) and "| gpt2 xla |" in markdown
  assert "Where gpt2 xla's step goes" in markdown
  assert f"in calls of 10: {calls['call_step_ms']} ms a step" in markdown
  assert f"{loop['loop_share']:.0%})" in markdown
  assert "===== bench_seq_len" in (tmp_path / "gpu.log").read_text()
  assert report["environment"]["versions"]["jax"]


def test_a_dry_run_of_the_tier_alone_writes_the_whole_report(tmp_path):
  """`make test`'s share of the dry run (the whole plan is the slow test above): the script's
  path from the plan to the report, with its cheapest item, the tier, in a process of its own."""
  gpu.main(["--out", str(tmp_path), "--dry-run", "--items", "gpu tests"])
  report = json.loads((tmp_path / "gpu.json").read_text())
  [item] = report["items"]
  assert item["name"] == "gpu tests" and item["status"] == "ok", item
  if jax.default_backend() != "gpu":
    assert item["result"]["passed"] == item["result"]["failed"] == []
    assert len(item["result"]["skipped"]) >= 10  # every gpu test, each skipped with its reason
  markdown = (tmp_path / "gpu.md").read_text()
  assert markdown == gpu.render_markdown(report) and "| gpu tests | ok |" in markdown
  assert "| not measured |" in markdown  # the targets, with nothing behind them measured
  assert "===== gpu tests" in (tmp_path / "gpu.log").read_text()


def test_readme_block_is_rewritten_from_a_report(tmp_path):
  report = {"command": "python -m train.tools.gpu --out x", "dry_run": False,
            "environment": {"date": "2026-11-26", "python": "3.12.3", "device": "1 x H100",
                            "versions": {"jax": "0.11.2"}},
            "items": [{"name": "gpu tests", "command": "pytest", "status": "ok", "seconds": 1.0,
                       "result": {"passed": ["a"], "failed": [], "skipped": []}}]}
  (tmp_path / "gpu.json").write_text(json.dumps(report))
  speed, readme = tmp_path / "speed.md", tmp_path / "README.md"
  begin, end = gpu.README_BLOCK
  speed.write_text(f"intro\n{begin}\nold\n{end}\noutro\n")
  readme.write_text("{}\nold\n{}\n".format(*gpu.TARGETS_BLOCK))
  gpu.rewrite_readme([str(tmp_path / "gpu.json")], str(speed), str(readme))
  text = speed.read_text()
  assert text.startswith("intro\n") and text.endswith(f"{end}\noutro\n") and "old" not in text
  verdicts = readme.read_text()
  assert "on 2026-11-26, 1 x H100" in verdicts and "| target |" in verdicts
  assert "old" not in verdicts and "| target |" in text
  assert "gpu tests: 1 passed, 0 failed, 0 skipped." in text


def test_targets_compare_our_best_with_the_peer_and_say_what_was_not_measured():
  rnn = lambda *rows: {"status": "ok", "result": {"size": {}, "rows": [
      {"cell": c, "dtype": d, "impl": i, "ms": ms, "tokens_per_s": 1, "time_vs_ours": 1}
      for c, d, i, ms in rows]}}
  bench = lambda status="ok", **r: {"status": status, "result": r}
  items = {"bench_rnn lstm": rnn(
               ("lstm", "float32", "ours (scan)", 9.0), ("lstm", "float32", "ours (cudnn)", 4.0),
               ("lstm", "bfloat16", "ours (scan)", 6.0), ("lstm", "bfloat16", "torch", 5.0),
               ("lstm", "float32", "torch", 3.0), ("lstm", "float32", "flax stock", 8.0)),
           "bench_rnn gru": {**rnn(("gru", "float32", "ours (scan)", 7.0),
                                   ("gru", "bfloat16", "torch", 6.0),
                                   ("gru", "float32", "flax stock", 7.5)),
                             "status": "timed out after 50 s"},
           "gpt2 xla": bench(tokens_per_s=100), "gpt2 cudnn": bench(tokens_per_s=200, mfu=0.45),
           "torch gpt2": bench(tokens_per_s=160), "resnet18 bf16": bench(examples_per_s=10),
           "torch resnet18 bf16": bench(examples_per_s=20),
           "resnet18 f32": bench(examples_per_s=10), "torch resnet18 f32": bench("exit status 1"),
           "loop mnist1d_cnn": bench(loop_share=0.93)}  # (and no item with 100 steps per call)
  report = {"items": [{"name": k, "command": "", **v} for k, v in items.items()]}
  got = {t["target"]: (t["ours"], t["peer"], t["ratio"], t["bound"], t["met"], t["partial"])
         for t in gpu.targets(report)}
  assert got == {
      "LSTM step <= torch's bf16 autocast": ("ours (cudnn), float32", "torch, bfloat16", 0.8,
                                             "<= 1.0", True, False),
      "GRU step <= torch's fastest": ("ours (scan), float32", "torch, bfloat16", 1.167, "<= 1.0",
                                      False, True),
      "LSTM step <= 0.8 x flax's stock cell": ("ours (cudnn), float32", "flax stock, float32",
                                               0.5, "<= 0.8", True, False),
      "GRU step <= 0.8 x flax's stock cell": ("ours (scan), float32", "flax stock, float32",
                                              0.933, "<= 0.8", False, True),
      "GPT-2 small tokens/s >= torch.compile's": ("gpt2 cudnn", "torch gpt2", 0.8, "<= 1.0", True,
                                                  False),
      "ResNet-18 bf16 examples/s >= 2 x torch's": ("resnet18 bf16", "torch resnet18 bf16", 2.0,
                                                   "<= 0.5", False, False),
      "ResNet-18 f32 examples/s >= torch's": ("resnet18 f32", "", None, "<= 1.0", None, False),
      "GPT-2 small MFU >= 50%": ("gpt2 cudnn", "", 0.45, ">= 0.5", False, False),
      "full run's loop >= 90% of the back-to-back step rate": ("loop mnist1d_cnn", "", 0.93,
                                                               ">= 0.9", True, False),
      "full run's loop, 100 steps per call >= 90% of the back-to-back step rate": (
          gpu.LOOP_CALLS, "", None, ">= 0.9", None, False),
  }
  markdown = gpu.render_markdown({"command": "c", "dry_run": False, "items": report["items"],
                                  "environment": {"date": "d", "device": "1 x H100",
                                                  "python": "3.12", "versions": {}}})
  assert ("| GRU step <= torch's fastest | ours (scan), float32 | torch, bfloat16 | 1.167 | <= 1.0 "
          "| not met (an item behind it timed out: rows missing) |") in markdown


@pytest.mark.slow  # waits for a timeout
def test_an_item_cut_off_by_its_timeout_keeps_the_rows_it_wrote(tmp_path):
  """The sweeps write their JSON after every row (train.tools.bench.write_rows): what a timeout
  leaves is read into the report. (The item stands for one: it wrote a row, then hangs.)"""
  code = ("import json, subprocess, sys, time; "
          "json.dump({'rows': [{'ms': 1.0}]}, open(sys.argv[-1] + '/sweep.json', 'w')); "
          "child = subprocess.Popen(['sleep', '120']); "
          "open(sys.argv[-1] + '/child.pid', 'w').write(str(child.pid)); "
          "time.sleep(60)")
  item = gpu.Item("sweep", [gpu.PY, "-c", code], 60)
  with open(tmp_path / "log", "w") as log:
    entry = gpu.run_item(item, 5, str(tmp_path), log)
  assert entry["status"] == "timed out after 5 s" and entry["result"]["rows"] == [{"ms": 1.0}]
  child = int((tmp_path / "sweep" / "child.pid").read_text())  # the item's own child: gone too
  for _ in range(50):
    try:
      os.kill(child, 0)
    except ProcessLookupError:
      break
    time.sleep(0.1)
  else:
    pytest.fail(f"the item's child {child} outlived it")


def test_a_second_call_runs_the_named_items_and_its_report_merges_with_the_first():
  plan = gpu.plan(dry_run=False)
  assert [i.name for i in gpu.select(plan, "seq2seq_speed, loop mnist1d_cnn host batches")] == [
      "seq2seq_speed", "loop mnist1d_cnn host batches"]
  assert all("," not in i.name for i in plan) and gpu.select(plan, None) == plan
  with pytest.raises(SystemExit, match=r"^error: --items: no item 'bench_rnm'; the plan's items: "
                                       r"gpu tests, bench_rnn lstm, "):
    gpu.select(plan, "bench_rnn lstm,bench_rnm")
  entry = lambda name, status: {"name": name, "status": status}
  first = {"command": "a", "environment": {"device": "1 x H100", "date": "d1"},
           "items": [entry("x", "ok"), entry("y", "not run: out of time"), entry("z", "ok")]}
  second = {"command": "b", "environment": {"device": "1 x H100", "date": "d2"},
            "items": [entry("y", "ok"), entry("z", "not run: out of time")]}
  merged = gpu.merge([first, second])
  assert merged["command"] == "a ; b" and merged["environment"] == first["environment"]
  assert merged["items"] == [entry("x", "ok"), entry("y", "ok"), entry("z", "ok")]
  with pytest.raises(SystemExit, match=r"^error: --readme: the reports come from different "
                                       r"devices \(1 x H100, 1 x H200\)"):
    gpu.merge([first, {**second, "environment": {"device": "1 x H200"}}])


@pytest.mark.slow  # waits for a timeout
def test_a_test_tier_cut_off_by_its_timeout_reports_the_tests_it_ran(tmp_path):
  """Interrupted (Ctrl-C), pytest writes the JUnit XML of what it ran before the slow test."""
  (tmp_path / "test_tier.py").write_text(
      "import time\n\ndef test_quick():\n  pass\n\ndef test_slow():\n  time.sleep(60)\n")
  item = gpu.Item("tier", [gpu.PY, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider",
                           "-q", str(tmp_path / "test_tier.py")], 60, tests=True)
  work = tmp_path / "work"
  with open(tmp_path / "log", "w") as log:
    entry = gpu.run_item(item, 8, str(work), log)
  assert entry["status"] == "timed out after 8 s" and entry["seconds"] < 8 + gpu.INTERRUPT_GRACE_S
  assert entry["result"]["passed"] == ["test_quick"]


def test_a_cut_off_test_run_leaves_its_outcomes_and_failures_in_the_log(tmp_path):
  """pytest --live-report (tests/conftest.py) writes each outcome, and a failure's whole report
  with its captured output, as the test ends; with no JUnit XML (a run cut off by its timeout),
  the item's outcomes are read from those lines."""
  (tmp_path / "conftest.py").write_text(
      "from tests.conftest import pytest_addoption, pytest_configure  # noqa: F401\n")
  (tmp_path / "test_demo.py").write_text(
      "import sys, pytest\n"
      "def test_ok(): pass\n"
      "def test_bad():\n"
      "  print('from the subprocess', file=sys.stderr)\n"
      "  assert 1 == 2\n"
      "@pytest.mark.skip(reason='x')\n"
      "def test_skipped(): pass\n")
  proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider",
                         "-q", "--live-report", "--rootdir", str(tmp_path),
                         str(tmp_path / "test_demo.py")],
                        cwd=gpu.REPO, capture_output=True, text=True, timeout=120)
  log = proc.stdout
  assert "[live] FAILED " in log and "from the subprocess" in log.split("[live] skipped")[0]
  item = gpu.Item("gpu tests", [], 1, tests=True)
  expected = {"passed": ["test_ok"], "failed": ["test_bad"], "skipped": ["test_skipped"]}
  assert gpu.read_result(item, str(tmp_path), str(tmp_path / "missing.xml"), log) == expected
  (tmp_path / "torn.xml").write_text('<testsuites><testsuite name="pytest"><testcase name="te')
  assert gpu.read_result(item, str(tmp_path), str(tmp_path / "torn.xml"), log) == expected
  # One outcome per test, the worst of its phases; ids with spaces kept whole.
  log = ("[live] passed t.py::test_a[x y] (call, 1.0 s)\n"
         "[live] FAILED t.py::test_a[x y] (teardown, 1.2 s)\n")
  assert gpu.live_results(log) == {"passed": [], "skipped": [], "failed": ["test_a[x y]"]}
