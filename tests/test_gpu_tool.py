"""`make gpu`'s script, dry run: the whole plan at tiny sizes on the CPU, so that it cannot rot
(the PyTorch items too, where torch is installed: `make test-torch`)."""
import importlib.util
import json

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
  assert items["gpt2 xla"]["result"]["step_ms"] > 0
  assert ("torch" in {r["impl"] for r in items["bench_rnn"]["result"]["rows"]}) == torch
  if torch:
    assert items["torch gpt2"]["result"]["params"] == items["gpt2 xla"]["result"]["params"]
  loop = items["loop mnist1d_cnn"]["result"]
  assert loop["loop_steps"] == 20 and loop["loop_share"] > 0
  markdown = (tmp_path / "gpu.md").read_text()
  assert markdown == gpu.render_markdown(report) and "| gpt2 xla |" in markdown
  assert f"{loop['loop_share']:.0%})" in markdown
  assert "===== bench_seq_len" in (tmp_path / "gpu.log").read_text()
  assert report["environment"]["versions"]["jax"]


def test_readme_block_is_rewritten_from_a_report(tmp_path):
  report = {"command": "python -m train.tools.gpu --out x", "dry_run": False,
            "environment": {"date": "2026-11-26", "python": "3.12.3", "device": "1 x H100",
                            "versions": {"jax": "0.11.2"}},
            "items": [{"name": "gpu tests", "command": "pytest", "status": "ok", "seconds": 1.0,
                       "result": {"passed": ["a"], "failed": [], "skipped": []}}]}
  (tmp_path / "gpu.json").write_text(json.dumps(report))
  readme = tmp_path / "README.md"
  begin, end = gpu.README_BLOCK
  readme.write_text(f"intro\n{begin}\nold\n{end}\noutro\n")
  gpu.rewrite_readme([str(tmp_path / "gpu.json")], str(readme))
  text = readme.read_text()
  assert text.startswith("intro\n") and text.endswith(f"{end}\noutro\n") and "old" not in text
  assert "GPU tests: 1 passed, 0 failed, 0 skipped." in text


def test_targets_compare_our_best_with_the_peer_and_say_what_was_not_measured():
  rnn = [{"cell": c, "dtype": d, "impl": i, "ms": ms} for c, d, i, ms in [
      ("lstm", "float32", "ours (scan)", 9.0), ("lstm", "float32", "ours (cudnn)", 4.0),
      ("lstm", "bfloat16", "ours (scan)", 6.0), ("lstm", "bfloat16", "torch", 5.0),
      ("lstm", "float32", "torch", 3.0), ("lstm", "float32", "flax stock", 8.0),
      ("gru", "float32", "ours (scan)", 7.0), ("gru", "bfloat16", "torch", 6.0),
      ("gru", "float32", "flax stock", 7.5)]]
  bench = lambda **r: {"status": "ok", "result": r}
  items = {"bench_rnn": {"result": {"rows": rnn}},
           "gpt2 xla": bench(tokens_per_s=100), "gpt2 cudnn": bench(tokens_per_s=200, mfu=0.45),
           "torch gpt2": bench(tokens_per_s=160), "resnet18 bf16": bench(examples_per_s=10),
           "torch resnet18 bf16": bench(examples_per_s=20),
           "loop mnist1d_cnn": bench(loop_share=0.93)}
  report = {"items": [{"name": k, **v} for k, v in items.items()]}
  got = {t["target"]: (t["ours"], t["peer"], t["ratio"], t["met"]) for t in gpu.targets(report)}
  assert got == {
      "LSTM step <= torch's bf16 autocast": ("ours (cudnn), float32", "torch, bfloat16", 0.8, True),
      "GRU step <= torch's fastest": ("ours (scan), float32", "torch, bfloat16", 1.167, False),
      "LSTM step <= 0.8 x flax's stock cell": ("ours (cudnn), float32", "flax stock, float32",
                                               0.5, True),
      "GRU step <= 0.8 x flax's stock cell": ("ours (scan), float32", "flax stock, float32",
                                              0.933, False),
      "GPT-2 small tokens/s >= torch.compile's": ("gpt2 cudnn", "torch gpt2", 0.8, True),
      "ResNet-18 bf16 examples/s >= 2 x torch's": ("resnet18 bf16", "torch resnet18 bf16", 2.0,
                                                   False),
      "ResNet-18 f32 examples/s >= torch's": ("", "", None, None),
      "GPT-2 small MFU >= 50%": ("gpt2 cudnn", "", 0.45, False),
      "full run's loop >= 90% of the back-to-back step rate": ("loop mnist1d_cnn", "", 0.93, True),
  }


def test_an_item_cut_off_by_its_timeout_keeps_the_rows_it_wrote(tmp_path):
  """The sweeps write their JSON after every row (train.tools.bench.write_rows): what a timeout
  leaves is read into the report."""
  code = ("import sys; from train.tools.bench import write_rows; "
          "write_rows(sys.argv[-1] + '/sweep.json', 'cmd', [{'ms': 1.0}]); "
          "import time; time.sleep(60)")
  item = gpu.Item("sweep", [gpu.PY, "-c", code], 60, "bench_rnn")
  with open(tmp_path / "log", "w") as log:
    entry = gpu.run_item(item, 10, str(tmp_path), log)
  assert entry["status"] == "timed out after 10 s" and entry["result"]["rows"] == [{"ms": 1.0}]


def test_a_second_call_runs_the_named_items_and_its_report_merges_with_the_first():
  plan = gpu.plan(dry_run=False)
  assert [i.name for i in gpu.select(plan, "seq2seq_speed, bench_rnn")] == ["bench_rnn",
                                                                             "seq2seq_speed"]
  assert gpu.select(plan, None) == plan
  with pytest.raises(SystemExit, match=r"^error: --items: no item 'bench_rnm'; the plan's items: "
                                       r"gpu tests, bench_rnn, "):
    gpu.select(plan, "bench_rnn,bench_rnm")
  entry = lambda name, status: {"name": name, "status": status}
  first = {"command": "a", "environment": {"device": "1 x H100"},
           "items": [entry("x", "ok"), entry("y", "not run: out of time"), entry("z", "ok")]}
  second = {"command": "b", "environment": {"device": "other"},
            "items": [entry("y", "ok"), entry("z", "not run: out of time")]}
  merged = gpu.merge([first, second])
  assert merged["command"] == "a ; b" and merged["environment"] == {"device": "1 x H100"}
  assert merged["items"] == [entry("x", "ok"), entry("y", "ok"), entry("z", "ok")]
