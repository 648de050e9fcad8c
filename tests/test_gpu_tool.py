"""`make gpu`'s script, dry run: the whole plan at tiny sizes on the CPU, so that it cannot rot."""
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
  for name, item in items.items():
    assert item["status"] in ("ok", "skipped: no torch"), (name, item["status"])
  if jax.default_backend() != "gpu":
    assert items["gpu tests"]["result"]["passed"] == []  # every gpu test skips on a CPU
  assert items["bench_rnn"]["result"]["rows"] and items["gpt2 xla"]["result"]["step_ms"] > 0
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
  gpu.rewrite_readme(str(tmp_path / "gpu.json"), str(readme))
  text = readme.read_text()
  assert text.startswith("intro\n") and text.endswith(f"{end}\noutro\n") and "old" not in text
  assert "GPU tests: 1 passed, 0 failed, 0 skipped." in text
