"""Shared fixtures: a prepared MNIST-1D in a temporary TFDS data dir, and tiny configs; the `gpu`
tier skipped, with the reason, where jax has no GPU; `--live-report`, for runs that may be cut
off."""
import importlib
import time

import jax
import pytest


def pytest_addoption(parser):
  parser.addoption("--live-report", action="store_true",
                   help="write each test's outcome and time, and each failure's whole report, "
                        "the moment the test ends (make gpu: a run cut off never reaches the "
                        "summary)")


def pytest_configure(config):
  if config.getoption("live_report"):
    config.pluginmanager.register(LiveReport(config), "live_report")


class LiveReport:
  def __init__(self, config):
    self.config, self.started = config, {}

  def pytest_runtest_logstart(self, nodeid):
    self.started[nodeid] = time.perf_counter()

  def pytest_runtest_logreport(self, report):
    if not (report.failed or report.skipped or report.when == "call"):
      return  # a passed setup or teardown
    writer = self.config.pluginmanager.get_plugin("terminalreporter")
    seconds = time.perf_counter() - self.started.get(report.nodeid, time.perf_counter())
    outcome = "skipped" if report.skipped else "FAILED" if report.failed else "passed"
    if writer._tw.width_of_current_line:  # after pytest's progress dots
      writer.write_line("")
    writer.write_line(f"[live] {outcome} {report.nodeid} ({report.when}, {seconds:.1f} s)")
    if report.failed:
      writer.write_line(report.longreprtext)
      for title, content in report.sections:  # the test's captured output
        writer.write_sep("-", title)
        writer.write_line(content)


def pytest_collection_modifyitems(config, items):
  backend = jax.default_backend()
  if backend == "gpu":
    return
  skip = pytest.mark.skip(reason=f"needs a GPU; jax's default backend is {backend!r} "
                                 "(make gpu runs this tier on one)")
  for item in items:
    if "gpu" in item.keywords:
      item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """MNIST-1D prepared once per test worker (generated offline, about a second)."""
  import tensorflow_datasets as tfds

  import train.data  # noqa: F401  (registers our builders)

  path = str(tmp_path_factory.mktemp("tfds"))
  tfds.builder("mnist1d", data_dir=path).download_and_prepare()
  return path


def load_config(experiment: str):
  return importlib.import_module(f"experiments.{experiment}").get_config()


@pytest.fixture(scope="session")
def tiny_config(data_dir):
  """A few-second version of an experiment: `tiny_config("mnist1d_cnn", num_steps=40)`."""

  def make(experiment: str = "mnist1d_cnn", **overrides):
    config = load_config(experiment)
    config.dataset.data_dir = data_dir
    config.num_steps, config.log_every, config.eval_every = 30, 5, 10
    config.checkpoint.every = 10
    config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, 5)
    config.update_from_flattened_dict(overrides)
    return config

  return make
