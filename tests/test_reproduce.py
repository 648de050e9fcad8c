"""Sweeps, the results registry (train.tools.reproduce), reports over runs and the CNN-claims tools, on a
tiny experiment: logistic regression on MNIST-1D for 10 steps."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments.registry import KINDS, Beats, Diverges, Expected
from tests.conftest import load_config
from tests.kill_harness import metric_rows
from tests.test_experiments import EXPERIMENTS
from experiments.analysis import cnn_claims
from train import data, sweep
from train.loop import train_and_evaluate
from train.tools import report, reproduce
from train.config import ConfigError, validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = '''"""A tiny experiment for the tests."""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("accuracy", {value}, {tolerance}, seeds=(0, 1), source="recorded: a test")]
QUICK = Quick({{"num_steps": 5, "eval_every": 5, "checkpoint.every": 5}},
              [Expected("accuracy", 2.0, 0.1, source="analytic: impossible")])  # a mismatch


def get_config():
  config = base_config()
  config.num_steps, config.log_every, config.eval_every, config.checkpoint.every = 10, 5, 5, 5
  config.model = model_config("mlp", hidden=())
  return config
'''


RELATION = '''"""A tiny experiment whose registry relates two grid points: one learns, one cannot."""
from experiments.registry import Beats, Expected
from train.config import base_config, model_config

LEARNS, FROZEN = {{"optimizer.lr": 0.03}}, {{"optimizer.lr": 1e-9}}
EXPECTED = [
    Expected("accuracy", 0.1, 0.1, overrides=FROZEN, source="analytic: chance, 1 of 10 classes"),
    Expected("accuracy", 0.5, 0.5, overrides=LEARNS, source="recorded: a test"),
    Beats("accuracy", LEARNS, FROZEN, {margin}, source="analytic: a test"),
    Beats("loss", LEARNS, FROZEN, {margin}, mode="min", source="analytic: a test"),
]


def get_config():
  config = base_config()
  config.num_steps, config.log_every, config.eval_every, config.checkpoint.every = 20, 10, 10, 10
  config.model = model_config("mlp", hidden=())
  return config
'''


DIVERGES = '''"""A tiny experiment expected to diverge at one learning rate; the other trains."""
from experiments.registry import Diverges
from train.config import base_config, model_config

EXPECTED = [Diverges({"optimizer.lr": 1e38}, source="analytic: a test, the logits overflow"),
            Diverges({"optimizer.lr": 0.03}, above=2.0, source="analytic: a test, it trains")]


def get_config():
  config = base_config()
  config.num_steps, config.log_every, config.eval_every, config.checkpoint.every = 10, 5, 5, 5
  config.model = model_config("mlp", hidden=())
  return config
'''


def write_experiment(path, value=0.5, tolerance=0.5):
  path.write_text(TINY.format(value=value, tolerance=tolerance))
  return str(path)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, data_dir):
  """A 2-seed sweep of the tiny experiment, in the registry's layout: runs/tiny/seed=S."""
  tmp = tmp_path_factory.mktemp("sweep")
  config_path = write_experiment(tmp / "tiny.py")
  parent = str(tmp / "runs" / "tiny")
  config = sweep.apply(reproduce.load_experiment(config_path).get_config(),
                       {"dataset.data_dir": data_dir})
  sweep.run(config, parent, ["seed=0,1"])
  return tmp, config_path, parent


def test_the_sweep_flag_of_the_cli(tmp_path):
  """`--sweep` reaches train.sweep: a bad spec is a one-line user error, before any work."""
  proc = subprocess.run([sys.executable, "-m", "train", "--config",
                         os.path.join(REPO, "experiments", "mnist1d_logreg.py"), "--workdir",
                         str(tmp_path / "w"), "--sweep", "seed"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and "expected FIELD=VALUE1,VALUE2" in proc.stderr
  assert not os.path.exists(tmp_path / "w")


def test_sweep_specs_make_a_grid_of_named_members():
  axes = sweep.parse_sweep(["seed=0,1", "optimizer.lr=1e-3,3e-3",
                            "model.features=(8, 8),(16,)"])
  assert axes == {"seed": [0, 1], "optimizer.lr": [1e-3, 3e-3], "model.features": [(8, 8), (16,)]}
  members = sweep.grid(axes)
  assert len(members) == 8 and members[1] == {"seed": 0, "optimizer.lr": 1e-3, "model.features": (16,)}
  assert sweep.member_name(members[1]) == "seed=0,lr=0.001,features=16"
  assert sweep.member_name({"dataset.name": "adding_problem/t100", "model.name": "rnn"}) == (
      "dataset.name=adding_problem-t100,model.name=rnn")
  for bad in (["seed"], ["seed="], ["seed=0,,1"], ["seed=0", "seed=1"]):
    with pytest.raises(ConfigError):
      sweep.parse_sweep(bad)
  with pytest.raises(ConfigError, match="'seed=0,1,0': 0 is given twice"):  # (ran one member)
    sweep.parse_sweep(["seed=0,1,0"])
  with pytest.raises(ConfigError, match="would share the folder hidden=32x64"):
    sweep.run_members(load_config("mnist1d_mlp"), "/nonexistent",
                      sweep.grid(sweep.parse_sweep(["model.hidden=(32, 64),[32, 64]"])))


def test_a_sweep_and_a_single_run_do_not_share_a_folder(data_dir, tmp_path):
  """Both used to be accepted, and a report over the folder mixed them."""
  config = load_config("mnist1d_mlp")
  config.dataset.data_dir = data_dir
  (tmp_path / "sweep").mkdir()
  (tmp_path / "sweep" / "sweep.json").write_text("{}")
  with pytest.raises(ConfigError, match="sweep is a sweep's folder"):
    train_and_evaluate(config, str(tmp_path / "sweep"))
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text("{}")
  with pytest.raises(ConfigError, match="run holds a single run"):
    sweep.run(config, str(tmp_path / "run"), ["seed=0,1"])
  assert sorted(os.listdir(tmp_path / "run")) == ["config.json"]


def test_sweep_overrides_are_typed_and_checked():
  config = sweep.apply(load_config("mnist1d_cnn_paper"),
                       {"optimizer.lr": 1, "model.kernel_size": 3, "model.pool": "max"})
  assert config.optimizer.lr == 1.0 and isinstance(config.optimizer.lr, float)
  assert config.model.kernel_size == 3 and config.model.pool == "max"
  validate(config, data.DATASETS)
  for bad, message in (({"optimizer.lrr": 1.0}, "config has no field 'optimizer.lrr' (did you "
                         "mean 'optimizer.lr'?)"), ({"optimizr.lr": 1.0}, "config has no field "
                         "'optimizr' (did you mean 'optimizer'?)"), ({"seed.x": 1}, "no field")):
    with pytest.raises(ConfigError, match=re.escape(message)):
      sweep.apply(config, bad)
  for bad in ({"batch_size": "abc"}, {"optimizer.lr": "x1e-3"}):
    with pytest.raises(ConfigError, match="not a string"):
      sweep.apply(config, bad)


def test_sweep_writes_each_member_and_resumes_skipping_finished_ones(finished_sweep, capsys):
  tmp, config_path, parent = finished_sweep
  assert sorted(os.listdir(parent)) == ["lock", "seed=0", "seed=1", "sweep.json"]
  seeds = [report.load(os.path.join(parent, m), "results.json")["seed"] for m in ("seed=0", "seed=1")]
  assert seeds == [0, 1]
  with open(os.path.join(parent, "sweep.json")) as f:
    assert json.load(f)["members"] == {"seed=0": {"seed": 0}, "seed=1": {"seed": 1}}
  # TensorBoard is still written next to metrics.jsonl (nothing here needs it).
  assert glob.glob(os.path.join(parent, "seed=0", "tensorboard", "events.*"))

  # Again, with one member more: the finished ones are skipped, only the new one trains.
  config = sweep.apply(reproduce.load_experiment(config_path).get_config(),
                       {"dataset.data_dir": report.load(os.path.join(parent, "seed=0"),
                                                        "config.json")["dataset"]["data_dir"]})
  resumed = str(tmp / "resumed")
  shutil.copytree(parent, resumed)
  results = sweep.run(config, resumed, ["seed=0,1,2"])
  out = capsys.readouterr().out
  assert out.count("already finished") == 2 and "seed=2 already finished" not in out
  assert results[os.path.join(resumed, "seed=0")] == report.load(os.path.join(parent, "seed=0"),
                                                                 "results.json")
  assert report.load(os.path.join(resumed, "seed=2"), "results.json")["seed"] == 2


def test_report_over_a_sweep_writes_a_table_png_and_html(finished_sweep, tmp_path, capsys):
  _, _, parent = finished_sweep
  report.main([parent, "--out", str(tmp_path), "--markdown"])
  out = capsys.readouterr().out
  assert "(2 runs)" in out and "| 0,1 |" in out and "params" in out and "examples/s" in out
  assert os.path.getsize(tmp_path / "report.png") > 10_000
  page = (tmp_path / "report.html").read_text()
  assert "<table>" in page and "data:image/png;base64," in page and "accuracy" in page
  # The plot: one line per row, the mean over its seeds with a ± std band, a short legend.
  seeds = [os.path.join(parent, f"seed={s}") for s in (0, 1)]
  steps, mean, std = report.mean_curves(seeds)[("validation", "accuracy")]
  per_seed = [[r["accuracy"] for r in metric_rows(s) if r["split"] == "validation"] for s in seeds]
  a, b = np.array(per_seed)  # two seeds: their midpoint, and the sample std of two values
  np.testing.assert_allclose(mean, (a + b) / 2, rtol=1e-6)
  np.testing.assert_allclose(std, np.abs(a - b) / np.sqrt(2), rtol=1e-6)
  assert report.short_name(seeds, "") == f"{os.path.basename(parent)} (2 seeds, mean ± std)"
  assert report.short_name(seeds, "lr=0.5") == "lr=0.5 (2 seeds, mean ± std)"
  # Two groups that differ in a field: the table names it.
  groups = [[os.path.join(parent, "seed=0")], [os.path.join(parent, "seed=1")]]
  assert report.config_differences(groups) == ["", ""]  # only the seed differs
  other = tmp_path / "other"
  shutil.copytree(groups[0][0], other)
  config = json.loads((other / "config.json").read_text())
  config["optimizer"]["lr"] = 0.5
  (other / "config.json").write_text(json.dumps(config))
  assert report.config_differences(groups + [[str(other)]]) == ["lr=0.01"] * 2 + ["lr=0.5"]


def test_reproduce_measures_the_runs_and_checks_the_expected_value(finished_sweep, data_dir,
                                                                    tmp_path, capsys):
  tmp, config_path, parent = finished_sweep
  args = ["--runs", str(tmp / "runs"), "--set", f"dataset.data_dir={data_dir}"]
  accuracies = [report.load(os.path.join(parent, f"seed={s}"), "results.json")["final"]["accuracy"]
                for s in (0, 1)]
  assert reproduce.main([config_path, *args]) == 0  # the sweep's runs are found, not retrained
  out = capsys.readouterr().out
  assert out.count("already finished") == 2 and f"{np.mean(accuracies):.3f}" in out
  assert "ok" in out.splitlines()[-3] and "all 1 entries ok" in out
  assert out.splitlines()[-1] == ("0 independent (paper, analytic), 1 recorded, 0 estimated and "
                                  "0 relations ok")

  # The same runs against a value they miss by more than the tolerance: exit status 1.
  missed = write_experiment(tmp_path / "tiny.py", value=np.mean(accuracies) + 0.02,
                            tolerance=0.01)
  assert reproduce.main([missed, *args]) == 1
  assert "MISMATCH" in capsys.readouterr().out

  # The README's view of runs whose experiment has changed since they ran: stale, not ok.
  rows = reproduce.reproduce(config_path, str(tmp / "runs"), overrides={"optimizer.lr": 0.5},
                             run=False)
  assert rows[0]["status"].startswith("MISMATCH: stale runs") and "optimizer.lr" in rows[0]["status"]

  # ... or whose dataset has changed since (its builder's version: a run records the one it read).
  path = os.path.join(parent, "seed=0", "results.json")
  with open(path) as f:
    original = f.read()
  try:
    results = json.loads(original)
    assert results["dataset_version"] == data.dataset_version("mnist1d") is not None
    with open(path, "w") as f:
      json.dump({**results, "dataset_version": "0.9.0"}, f)
    rows = reproduce.reproduce(config_path, str(tmp / "runs"),
                               overrides={"dataset.data_dir": data_dir}, run=False)
    assert rows[0]["status"] == ("MISMATCH: stale runs (they differ in the dataset's version: "
                                 f"0.9.0, now {results['dataset_version']})")
  finally:
    with open(path, "w") as f:
      f.write(original)


def test_where_the_data_is_read_makes_no_run_stale_nor_another_run(finished_sweep, data_dir,
                                                                   tmp_path, capsys):
  """The same data read from another data dir (a link to it), not downloaded: the finished runs
  count (not stale, not refused as another config). A run of another config is refused before
  anything is trained or its dataset prepared."""
  tmp, config_path, parent = finished_sweep
  os.symlink(data_dir, tmp_path / "link")
  runs = ["--runs", str(tmp / "runs")]
  assert reproduce.main([config_path, *runs, "--set", f"dataset.data_dir={tmp_path / 'link'}",
                         "--set", "dataset.download=False"]) == 0
  out = capsys.readouterr().out
  assert out.count("already finished") == 2 and "all 1 entries ok" in out
  (tmp_path / "empty").mkdir()
  assert reproduce.main([config_path, *runs, "--set", f"dataset.data_dir={tmp_path / 'empty'}",
                         "--set", "optimizer.lr=0.5"]) == 2
  assert capsys.readouterr().err == (
      f"error: {parent}/seed=0 already finished with another config (differing: optimizer.lr); "
      f"its results stand. To train on from it, use a new --workdir with "
      f"--config.init_from={parent}/seed=0\n")
  assert not os.listdir(tmp_path / "empty")


@pytest.mark.slow  # trains a grid: `make test-slow`
def test_a_relation_between_grid_points_passes_only_by_its_margin(data_dir, tmp_path, capsys):
  """`Beats`: the run that learns beats the one whose learning rate is ~0 on accuracy (higher) and
  on loss (lower); the same runs against a margin they cannot reach are a mismatch."""
  args = ["--runs", str(tmp_path / "runs"), "--set", f"dataset.data_dir={data_dir}"]
  path = tmp_path / "related.py"
  path.write_text(RELATION.format(margin=0.02))
  assert reproduce.main([str(path), *args]) == 0
  out = capsys.readouterr().out
  assert "lr=0.03 beats lr=1e-09" in out and "loss (lower)" in out and "by ≥ 0.020" in out
  assert out.splitlines()[-1] == ("1 independent (paper, analytic), 1 recorded, 0 estimated and "
                                  "2 relations ok")
  path.write_text(RELATION.format(margin=2.0))
  assert reproduce.main([str(path), *args]) == 1
  rows = reproduce.reproduce(str(path), str(tmp_path / "runs"), run=False,
                             overrides={"dataset.data_dir": data_dir})
  assert [r["status"] for r in rows[2:]] == ["MISMATCH", "MISMATCH"]
  # measured: by how much it beat the other; positive both times (higher accuracy, lower loss)
  assert all(float(r["measured"].split()[1]) > 0.02 for r in rows[2:])


def test_a_run_expected_to_diverge_is_recorded_as_diverged(data_dir, tmp_path, capsys):
  """`Diverges`: the run the non-finite guard stops is the expected outcome, kept in diverged.json
  (a second check reads it without training); a run that trains to the end is a mismatch."""
  path = tmp_path / "diverges.py"
  path.write_text(DIVERGES)
  runs = tmp_path / "runs"
  args = ["--runs", str(runs), "--set", f"dataset.data_dir={data_dir}"]
  assert reproduce.main([str(path), *args]) == 1
  out = capsys.readouterr().out
  assert "1 of 1 diverged (non-finite)" in out and "a run did not diverge" in out
  with open(runs / "diverges" / "lr=1e+38,seed=0" / "diverged.json") as f:
    record = json.load(f)
  assert record["error"].startswith("loss became nan") and record["seed"] == 0
  assert not os.path.exists(runs / "diverges" / "lr=1e+38,seed=0" / "results.json")
  rows = reproduce.reproduce(str(path), str(runs), run=False,
                             overrides={"dataset.data_dir": data_dir})
  assert rows[0]["measured"] == "1 of 1 diverged (non-finite)" and rows[0]["status"] == "ok"
  report.main([str(runs / "diverges" / "lr=1e+38,seed=0")])  # a report of no finished run
  assert capsys.readouterr().out == "no runs with results.json found\n"
  assert rows[1]["measured"].startswith("0 of 1 diverged (")
  assert rows[1]["status"] == "MISMATCH: a run did not diverge"
  assert rows[1]["expected"] == "diverges (non-finite or > 2.000)"
  # The same diverged run read for an entry that expects a result: a mismatch, not "not run".
  (tmp_path / "expects").mkdir()
  (tmp_path / "expects" / "diverges.py").write_text(DIVERGES.split("EXPECTED")[0].replace(
      "import Diverges", "import Expected") + 'EXPECTED = [Expected("accuracy", 0.5, 0.5, overrides='
      '{"optimizer.lr": 1e38}, source="analytic: a test")]\n' + "def get_config" +
      DIVERGES.split("def get_config")[1])
  rows = reproduce.reproduce(str(tmp_path / "expects" / "diverges.py"), str(runs), run=False,
                             overrides={"dataset.data_dir": data_dir})
  assert rows[0]["status"] == "MISMATCH: diverged"


def test_reproduce_quick_runs_the_reduced_form(data_dir, tmp_path, capsys):
  config_path = write_experiment(tmp_path / "tiny.py")
  runs = tmp_path / "quick"
  assert reproduce.main([config_path, "--quick", "--runs", str(runs),
                         "--set", f"dataset.data_dir={data_dir}"]) == 1  # QUICK expects 2.0
  assert "MISMATCH" in capsys.readouterr().out
  assert report.load(str(runs / "tiny" / "seed=0"), "results.json")["num_steps"] == 5


def test_reproduce_skips_a_dataset_that_is_not_prepared(tmp_path, capsys):
  empty = str(tmp_path / "no_data")
  code = reproduce.main([os.path.join(REPO, "experiments", "mnist_cnn.py"), "--runs",
                         str(tmp_path / "runs"), "--set", f"dataset.data_dir={empty}"])
  out = capsys.readouterr().out
  assert code == 0 and "skipped: dataset 'mnist' not prepared" in out
  assert not os.path.exists(tmp_path / "runs" / "mnist_cnn")


def test_where_keeps_the_entries_that_read_a_run_of_those_values(capsys):
  """`--where dataset.name=...`: what re-checking a changed dataset has to train, no more."""
  path = os.path.join(REPO, "experiments", "dates_rnn.py")
  every = reproduce.plan(path)
  kept = reproduce.plan(path, where={"dataset.name": ["dates/l25", "dates/l50"]})
  assert 0 < len(kept) < len(every)
  for entry, points in every:  # a relation with one point at L = 100 too
    read = {p.dataset.name for p in points}
    assert ((entry, points) in kept) == bool(read & {"dates/l25", "dates/l50"}), entry
  assert len(reproduce.plan(path, where={"optimizer.lr": [3e-3]})) == len(every)  # 0.003: typed
  both = reproduce.plan(path, where={"dataset.name": ["dates/l25"], "model.attention": ["none"]})
  assert 0 < len(both) < len(kept) and all(
      any(p.dataset.name == "dates/l25" and p.model.attention == "none" for p in points)
      for _, points in both)
  with pytest.raises(ConfigError, match="--where dataset.nam: the config has no such field"):
    reproduce.plan(path, where={"dataset.name": ["dates/l25"], "dataset.nam": ["x"]})
  assert reproduce.main([path, "--where", "dataset.name=dates/l99", "--runs", "/nonexistent"]) == 0
  assert "no entry with such a run (--where)" in capsys.readouterr().out


def test_the_registry_of_every_experiment():
  """Each entry names a metric of its dataset and where its value comes from, its overrides make a
  valid config, and the tolerances are real; every experiment has a reduced form."""
  benchmarks = set()
  for name in EXPERIMENTS:
    module = reproduce.load_experiment(os.path.join(REPO, "experiments", f"{name}.py"))
    if not getattr(module, "EXPECTED", None):
      benchmarks.add(name)
      continue
    for quick in (False, True):
      base, entries = reproduce.registry(module, quick)
      assert entries, (name, quick)
      for entry in entries:
        assert isinstance(entry, (Expected, Beats, Diverges)) and entry.seeds
        assert entry.kind in KINDS
        assert len(entry.source.split(":", 1)[1].strip()) > 10, (name, entry)  # says where from
        assert not isinstance(entry, Expected) or entry.tolerance > 0
        for point in reproduce.entry_points(entry):
          config = sweep.apply(module.get_config(), {**base, **point})
          validate(config, data.DATASETS)
          assert isinstance(entry, Diverges) or (
              entry.metric in data.spec_of(config.dataset.name).metrics), (name, entry)
  assert benchmarks <= {"gpt2_small"}  # every other experiment is a reproduction target


def chance(config, metric: str) -> float:
  """What a model that learned nothing scores: its dataset's (`DatasetSpec.chance_of`)."""
  level = data.spec_of(config.dataset.name).chance_of(metric, config)
  assert level is not None, (f"no chance level for {metric} on {config.dataset.name}: give its "
                             "DatasetSpec one (`chance`)")
  return level


def test_no_band_includes_chance_unless_a_relation_says_what_differs():
  """An entry whose band holds chance passes for a broken model; then the same registry must hold
  a relation that the grid point loses to another one by a margin (`Beats`), which a broken model
  cannot meet."""
  at_chance = []
  for name in EXPERIMENTS:
    module = reproduce.load_experiment(os.path.join(REPO, "experiments", f"{name}.py"))
    for quick in (False, True):
      base, entries = reproduce.registry(module, quick)
      relations = [e for e in entries if isinstance(e, Beats)]
      for entry in entries:
        if not isinstance(entry, Expected):
          continue
        config = sweep.apply(module.get_config(), {**base, **entry.overrides})
        if abs(entry.value - chance(config, entry.metric)) <= entry.tolerance:
          at_chance.append((name, entry.overrides))
          assert any(r.worse == entry.overrides and r.metric == entry.metric for r in relations), (
              f"{name} {entry.overrides}: {entry.value} +- {entry.tolerance} includes chance "
              f"{chance(config, entry.metric):.3f}, and no relation says what must beat it")
  assert ("adding_problem", {"dataset.name": "adding_problem/t100",
                             "model.cell": "simple"}) in at_chance  # the check does find them


def test_an_experiment_without_expected_results_is_a_benchmark(tmp_path, capsys):
  path = tmp_path / "bench.py"
  path.write_text(TINY.split("EXPECTED")[0] + "\n\ndef get_config():\n  return base_config()\n")
  assert reproduce.main([str(path), "--runs", str(tmp_path / "runs")]) == 0
  assert "no expected result" in capsys.readouterr().out
  assert not os.path.exists(tmp_path / "runs")


def test_readme_blocks_are_regenerated_between_their_markers(tmp_path):
  readme = tmp_path / "README.md"
  readme.write_text("intro 1.5\n<!-- results:mnist1d_cnn begin -->\nold 99 %\n"
                    "<!-- results:mnist1d_cnn end -->\nafter\n<!-- results:extra begin -->\n"
                    "<!-- results:extra end -->\n")
  written = reproduce.update_readme(str(readme), str(tmp_path / "runs"), {"extra": "E"})
  text = readme.read_text()
  assert written == ["mnist1d_cnn", "extra"] and "old 99 %" not in text
  assert text.startswith("intro 1.5\n") and "\nafter\n" in text and "\nE\n" in text
  assert "python -m train.tools.reproduce experiments/mnist1d_cnn.py" in text
  assert "0.976 ± 0.008" in text and "not run (0 of 3 runs)" in text and "| recorded |" in text
  # Only the named blocks: the others stay as they were.
  readme.write_text(text.replace("\nE\n", "\nkept\n"))
  assert reproduce.update_readme(str(readme), str(tmp_path / "runs"), {"extra": "E"},
                                 only={"mnist1d_cnn"}) == ["mnist1d_cnn"]
  assert "\nkept\n" in readme.read_text()
  readme.write_text("<!-- results:nonsense begin -->\n<!-- results:nonsense end -->\n")
  with pytest.raises(ConfigError, match="nonsense"):
    reproduce.update_readme(str(readme), str(tmp_path / "runs"))


def test_the_lecture_parameter_count(tmp_path):
  table = cnn_claims.params(str(tmp_path))
  assert table["dense, 1 node"]["weights"] == 100 * 100 * 3 == 30_000
  assert table["dense, 32 nodes"]["weights"] == 30_000 * 32
  assert table["conv, 32 kernels 3x3"]["weights"] == 3 * 3 * 3 * 32 == 864
  assert os.path.getsize(tmp_path / "cnn_params.png") > 0


def test_the_lecture_feature_map_sizes(tmp_path):
  """SAME pads the border: ceil(32 / s) a side; VALID does not: floor((32 - 3) / s) + 1; a w x w
  pool keeps one position in w a side; the depth is the number of kernels."""
  table = cnn_claims.sizes(str(tmp_path))
  assert list(table["layers"].values()) == [[32, 32, 32], [30, 30, 32], [16, 16, 32], [15, 15, 32],
                                            [16, 16, 32], [8, 8, 32]]
  assert table["uhd"]["dense_weights_per_node"] == 3840 * 2160 * 3 == 24_883_200
  assert "| max-pool 4x4 of the stride-1 SAME map | 8x8x32 |" in cnn_claims.readme_blocks(
      str(tmp_path))["cnn_sizes"]


def test_shifted_accuracy_matches_the_evaluation_at_no_shift(finished_sweep, tmp_path):
  _, _, parent = finished_sweep
  workdir = os.path.join(parent, "seed=0")
  at = dict(zip((0, 3, 40), cnn_claims.shifted_accuracy(workdir, [0, 3, 40])))
  final = report.load(workdir, "results.json")["final"]["accuracy"]
  assert at[0] == pytest.approx(final, abs=1e-6)
  assert at[40] == at[0] and at[3] != at[0]  # MNIST-1D signals have 40 steps: a full roll
  table = cnn_claims.shift([parent], [0, 3], str(tmp_path))
  assert table["tiny"]["accuracy"][0] == pytest.approx(
      np.mean([report.load(os.path.join(parent, f"seed={s}"), "results.json")["final"]["accuracy"]
               for s in (0, 1)]), abs=1e-6)
  assert os.path.exists(tmp_path / "shift_invariance.png")
