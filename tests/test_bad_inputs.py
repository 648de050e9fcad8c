"""Bad inputs that must be one line before anything is built: finished runs are final (and
config.init_from continues one), values checked up front, tools on bad input, messages that name
the real cause."""
import importlib
import os
import subprocess
import sys
from typing import ClassVar

import flax.linen as nn
import jax
import numpy as np
import pytest

import nets
import train.checkpoint
import train.loop
import train.workdir
from tests.kill_harness import REPO, final_state
from tests.test_faults import steps_wrapped
from tests.test_train import assert_one_line_error, cli, finished_run  # noqa: F401  (fixture)
from train import data, faults
from train.config import (ConfigError, base_config, loaded_config, model_config, unknown_field,
                          validate)
from train.loop import train_and_evaluate
from train.tools import reproduce


@pytest.mark.parametrize("overrides, differing", [
    (["--config.num_steps=40"], "num_steps"),
    (["--config.num_steps=40", "--config.optimizer.schedule=cosine"],
     "num_steps, optimizer.schedule"),
])
def test_a_finished_run_is_not_extended(finished_run, tmp_path, overrides, differing):
  """It exited 0, overwrote results.json, deleted the final checkpoints and stretched the
  schedule; now exit 2, one line pointing at config.init_from, nothing touched."""
  assert_one_line_error(finished_run, tmp_path, overrides,
                        f"already finished with another config (differing: {differing}); its "
                        "results stand. To train on from it, use a new --workdir with "
                        f"--config.init_from={tmp_path / 'run'}")


@pytest.mark.slow
def test_init_from_continues_a_finished_run_in_a_new_workdir(finished_run, tiny_config, tmp_path,
                                                             capsys):
  """Its parameters, not its optimizer state, step or schedule; a bad init_from is one line, and
  the new workdir is not made (it got a lock and an empty checkpoints/)."""
  source = str(finished_run[1])
  config = tiny_config("mnist1d_mlp", num_steps=10, init_from=source,
                       **{"optimizer.name": "sgd"})
  run = train.loop.setup(config)
  state = train.checkpoint.warm_start(source, run.init(), run.abstract_state)
  jax.tree.map(np.testing.assert_array_equal, state.params, final_state(source)["params"])
  assert int(state.step) == 0
  results = train_and_evaluate(config, str(tmp_path / "next"))
  assert results["resumed_from_step"] == 0 and results["num_steps"] == 10
  assert f"Initialised the parameters from the checkpoint of step 20 of {source}" in (
      capsys.readouterr().out)
  with pytest.raises(ConfigError, match=r"params/Dense_0/kernel is \(40, 100\) in the "
                     r"checkpoint, \(40, 7\) in the config.*config.init_from must be a run of "
                     "this architecture"):
    train_and_evaluate(tiny_config("mnist1d_mlp", init_from=source, **{"model.hidden": (7,)}),
                       str(tmp_path / "other"))
  with pytest.raises(ConfigError, match=f"config.init_from='{tmp_path}' holds no checkpoint"):
    train_and_evaluate(tiny_config("mnist1d_mlp", init_from=str(tmp_path)), str(tmp_path / "x"))
  assert not (tmp_path / "other").exists() and not (tmp_path / "x").exists()  # not even a lock


@pytest.mark.parametrize("experiment, overrides, message", [
    ("mnist1d_mlp", {"optimizer.eps": 0.0}, "config.optimizer.eps=0.0 must be > 0"),
    ("mnist1d_mlp", {"checkpoint.best_metric": "loss"},
     "config.checkpoint.best_metric='loss' improves by going down, but "
     "config.checkpoint.best_mode='max' would keep the worst checkpoint as the best; set "
     "config.checkpoint.best_mode='min'"),
    ("mnist1d_cnn", {"model.features": (0,)}, "config.model.features=(0,) must hold sizes > 0"),
    ("mnist1d_mlp", {"model.hidden": (100, -3)},
     "config.model.hidden=(100, -3) must hold sizes > 0"),
    ("mnist1d_mlp", {"seed": -1}, "config.seed=-1 must be >= 0"),
    ("mnist1d_mlp", {"model.dtype": "float12"},
     "unknown config.model.dtype 'float12' (did you mean 'float32'?); valid: bfloat16, float32"),
    ("chars_lstm", {"dataset.name": "python_reference", "dataset.seq_len": 10**6},
     "config.dataset.seq_len=1000000 is longer than python_reference:train ("),
    ("mnist1d_rnn", {"model.head": "per_step"}, "config.model (rnn) outputs (40, 10) per example, "
     "but 'mnist1d' has targets of shape () (classify task)"),
    ("mnist1d_cnn", {"model.strides": 50}, "config.model: block 1 shrinks the input to (0,) "
     "positions: fewer blocks, or smaller kernel_size, strides or pooling"),
    ("mnist1d_transformer", {"model.attention_dropout": 1.5},
     "config.model.attention_dropout=1.5 must be in [0, 1)"),
    ("mnist1d_transformer", {"model.attention_kernel": "dot_product",
                             "model.attention_dropout": 0.1},
     "config.model: attention_dropout=0.1 needs attention_kernel='xla', not 'dot_product'"),
])
def test_values_are_checked_before_anything_is_built(tiny_config, tmp_path, experiment, overrides,
                                                     message):
  config = tiny_config(experiment)
  with config.ignore_type():
    config.update_from_flattened_dict(overrides)
  with pytest.raises(ConfigError) as e:
    train_and_evaluate(config, str(tmp_path / "run"))
  assert str(e.value).startswith(message)
  assert not (tmp_path / "run").exists()


def test_a_config_lacking_fields_is_one_line(tiny_config, tmp_path):
  config = tiny_config("mnist1d_mlp")
  del config["optimizer"], config["init_from"]
  with pytest.raises(ConfigError, match=r"^the config lacks the fields init_from, optimizer.b1, "
                     r"optimizer.b2 \(and 11 more\); start from train.config.base_config\(\)$"):
    train_and_evaluate(config, str(tmp_path / "run"))


def test_a_config_file_returning_a_dict_is_one_line(tmp_path):
  path = tmp_path / "exp.py"
  path.write_text("def get_config():\n  return {'seed': 0}\n")
  bad = cli(f"--config={path}", f"--workdir={tmp_path / 'run'}")
  assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
      f"error: --config {path}: get_config() returned a dict, not an ml_collections.ConfigDict; "
      "start from train.config.base_config()"], bad.stderr


WIDE = '''"""A model whose field `width` has no default, registered by this experiment file."""
import flax.linen as nn

import nets
from train.config import base_config, model_config


class Wide(nn.Module):
  width: int
  num_outputs: int = 10

  @nn.compact
  def __call__(self, x, *, train=False):
    return nn.Dense(self.num_outputs)(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))


nets.MODELS["wide"] = Wide


def get_config():
  config = base_config()
  config.model = model_config("wide"{width})
  return config
'''


def test_a_model_field_without_a_default_must_be_given(tmp_path, monkeypatch):
  """It was `error: bad flags: type object 'Wide' has no attribute 'width'`, given or not."""
  path = tmp_path / "wide.py"
  path.write_text(WIDE.format(width=""))
  bad = cli(f"--config={path}", f"--workdir={tmp_path / 'run'}")
  assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
      "error: Wide has no default for width: give it, model_config('wide', width=...)"], bad.stderr
  path.write_text(WIDE.format(width=", width=8"))
  monkeypatch.setattr(nets, "MODELS", dict(nets.MODELS))  # the file registers Wide in it
  config = loaded_config(["train", f"--config={path}"])
  assert config.model.to_dict() == {"name": "wide", "width": 8, "num_outputs": 10}
  validate(config, data.DATASETS)
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  assert train.workdir.config_changes(str(tmp_path), config) == []


class Pooled(nn.Module):
  """A model whose own int field may be 0 ("none")."""
  num_outputs: int = 10
  hidden: int = 0  # 0: no hidden layer
  zero_allowed: ClassVar[tuple[str, ...]] = ("hidden",)

  @nn.compact
  def __call__(self, x, *, train=False):
    x = x.mean(axis=1)
    return nn.Dense(self.num_outputs)(nn.relu(nn.Dense(self.hidden)(x)) if self.hidden else x)


def test_a_model_lists_its_own_fields_that_may_be_0(monkeypatch):
  """A model's `zero_allowed`, not one list for all (which refused a new model's "0 means none"
  field: `config.model.hidden=0 must hold sizes > 0`); another model's field of that name not."""
  monkeypatch.setitem(nets.MODELS, "pooled", Pooled)
  config = base_config()
  config.model = model_config("pooled")
  validate(config, data.DATASETS)
  config.model = model_config("mlp", hidden=(0,))
  with pytest.raises(ConfigError, match=r"^config.model.hidden=\(0,\) must hold sizes > 0$"):
    validate(config, data.DATASETS)


def test_an_unknown_field_is_named_by_its_whole_flag():
  """absl names its last part only: 'lr' here is --config.lr's, not --config.optimizer.lr's."""
  path = os.path.join(REPO, "experiments", "mnist1d_mlp.py")
  argv = ["train", f"--config={path}", "--config.optimizer.lr=2", "--config.lr=1"]
  assert unknown_field(argv, loaded_config(argv)) == (
      "--config.lr: the config has no field 'lr'")
  argv = ["train", "--config", path, "--config.model.hiden=3"]
  assert unknown_field(argv, loaded_config(argv)) == ("--config.model.hiden: the config has no field "
                                                "'model.hiden' (did you mean 'model.hidden'?)")
  assert loaded_config(["train", "--config=nonexistent.py"]) is None


@pytest.mark.parametrize("args, message", [
    (["--steps=0"], "error: --steps=0 must be >= 1"),
    (["--config=experiments/nonexistent.py"], "error: cannot load --config: "),
    (["--back_to_back_s=inf"], "error: --back_to_back_s=inf must be a positive number"),
    (["--out=FILE"], "error: cannot write to --out 'FILE': "),
    (["--config.batch_sise=3"], "error: --config.batch_sise: the config has no field "
                                "'batch_sise' (did you mean 'batch_size'?)"),
])
def test_bench_on_bad_input_fails_first_in_one_line(tmp_path, args, message):
  (tmp_path / "file").write_text("")
  args = [a.replace("FILE", str(tmp_path / "file")) for a in args]
  config = [] if any(a.startswith("--config=") for a in args) else [
      "--config=experiments/mnist1d_mlp.py"]
  bad = subprocess.run([sys.executable, "-m", "train.tools.bench", *config, *args],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  lines = bad.stderr.strip().splitlines()
  assert bad.returncode == 2 and len(lines) == 1, bad.stderr[-2000:]
  assert lines[0].startswith(message.replace("FILE", str(tmp_path / "file")))
  assert not (tmp_path / "file").read_text()


@pytest.mark.parametrize("module, args, message", [
    ("experiments.analysis.bench_seq_len", ["--steps", "0"], "argument --steps: must be >= 1, got 0"),
    ("experiments.analysis.seq2seq", ["speed", "--tokens", "-1"], "argument --tokens: must be >= 1"),
    ("train.tools.time_by_op", ["EMPTY"], "no perfetto_trace.json.gz under EMPTY"),
    ("train.tools.report", ["EMPTY/nothing"], "no such path: EMPTY/nothing"),
    ("experiments.analysis.cnn_claims", ["shift", "EMPTY", "--out", "EMPTY"],
     "no finished runs (results.json) under EMPTY"),
    ("train.tools.gpu", ["--readme", "EMPTY/gpu.json"], "error: --readme EMPTY/gpu.json: "
     "FileNotFoundError"),
])
def test_the_tools_on_bad_input_are_one_line(tmp_path, capsys, module, args, message):
  """(argparse's usage line comes first; the error is the last line.)"""
  args, message = [a.replace("EMPTY", str(tmp_path)) for a in args], message.replace(
      "EMPTY", str(tmp_path))
  with pytest.raises(SystemExit) as exit_info:
    importlib.import_module(module).main(args)
  assert exit_info.value.code != 0
  err = str(exit_info.value.code) if isinstance(exit_info.value.code, str) else (
      capsys.readouterr().err.strip().splitlines()[-1])
  assert message in err, err


def test_reproduce_on_a_failing_config_or_a_missing_readme_is_one_line(tmp_path, capsys):
  path = tmp_path / "broken.py"
  path.write_text("from experiments.registry import Expected\n"
                  "EXPECTED = [Expected('accuracy', 0.5, 0.1, source='analytic: a test')]\n"
                  "def get_config():\n  raise RuntimeError('no such field')\n")
  assert reproduce.main([str(path), "--runs", str(tmp_path / "runs")]) == 2
  assert capsys.readouterr().err == f"error: {path}: RuntimeError: no such field\n"
  assert reproduce.main(["--readme", str(tmp_path / "NOPE.md")]) == 2
  assert capsys.readouterr().err == (f"error: --readme {tmp_path / 'NOPE.md'}: No such file or "
                                     "directory\n")


def test_a_missing_dataset_names_the_tfds_data_dir_of_the_environment(tiny_config, tmp_path,
                                                                      monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  config = tiny_config("mnist1d_mlp", **{"dataset.name": "mnist", "dataset.download": False,
                                         "dataset.data_dir": ""})
  with pytest.raises(ConfigError, match=f"^'mnist' is not prepared in {tmp_path / 'tfds'} and "):
    train_and_evaluate(config, str(tmp_path / "run"))


def test_a_state_larger_than_memory_names_the_memory_not_the_disk(tiny_config, tmp_path,
                                                                  monkeypatch):
  monkeypatch.setattr(faults, "memory_limit", lambda device: 2**20)
  monkeypatch.setattr(train.checkpoint.shutil, "disk_usage", lambda path: (1, 1, 0))
  config = tiny_config("mnist1d_mlp", **{"model.hidden": (1000, 1000)})
  with pytest.raises(faults.OutOfMemory, match=r"^the state \(parameters and optimizer state\) "
                     r"takes 0.01 GiB per device, more than the 0.00 GiB of a cpu; use a smaller "
                     r"model, or config.mesh.fsdp"):
    train_and_evaluate(config, str(tmp_path / "run"))


def test_out_of_memory_in_the_first_step_is_one_line_with_the_sizes(tiny_config, tmp_path,
                                                                     monkeypatch):
  def oom(step, batch):
    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                                     "3221225472 bytes.")

  steps_wrapped(monkeypatch, oom)
  with pytest.raises(faults.OutOfMemory, match=r"^out of memory on cpu: an allocation of 3.00 GiB "
                     r"failed; the state takes 0.00 GiB per device of its \d+\.\d\d GiB. Lower "
                     r"config.batch_size"):
    train_and_evaluate(tiny_config("mnist1d_mlp"), str(tmp_path / "run"))
  assert not os.listdir(tmp_path / "run" / "checkpoints")


def test_a_model_that_does_not_fit_the_data_fails_before_the_data_is_generated(tiny_config,
                                                                               tmp_path):
  """The dates task's vocabulary is known from its spec: no 20,000 examples generated first."""
  config = tiny_config("dates_rnn", **{"model.vocab_size": 7,
                                       "dataset.data_dir": str(tmp_path / "tfds")})
  with pytest.raises(ConfigError, match=r"^config.model.vocab_size=7 but 'dates/l50' needs \d+$"):
    train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "tfds").exists() and not (tmp_path / "run").exists()
