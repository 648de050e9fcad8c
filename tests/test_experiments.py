"""Every experiment file: documented, valid, and its model builds for its dataset's input shape."""
import jax
import jax.numpy as jnp
import pytest

import nets
from tests.conftest import load_config
from train import data
from train.config import validate
from train.tools import reproduce

EXPERIMENTS = [reproduce.experiment_name(p) for p in reproduce.all_experiments()]


def example_input(dataset):
  """A batch of 2 inputs of the dataset's shape and dtype (its spec's), without preparing it."""
  shape, dtype = data.spec_of(dataset.name).input_shape(dataset)
  return jnp.zeros((2, *shape), dtype)


def test_the_issue_experiments_exist():
  assert {"mnist1d_logreg", "mnist1d_mlp", "mnist1d_cnn", "mnist_cnn",
          "cifar10_resnet18"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment(name):
  module = __import__(f"experiments.{name}", fromlist=["get_config"])
  assert "Command" in module.__doc__ and f"experiments/{name}.py" in module.__doc__
  assert "Expected:" in module.__doc__
  config = load_config(name)
  validate(config, data.DATASETS)
  model = nets.create_model(**config.model)
  x = example_input(config.dataset)
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
  assert variables["params"]

