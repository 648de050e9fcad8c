"""Every experiment file: documented, valid, and its model builds for its dataset's input shape."""
import glob
import os

import jax
import jax.numpy as jnp
import pytest

import nets
from tests.conftest import load_config
from train import data
from train.config import validate

EXPERIMENTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(os.path.dirname(__file__), "..", "experiments", "*.py"))
    if not os.path.basename(p).startswith(("_", "common")))
IMAGE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def example_input(dataset):
  """A batch of 2 inputs of the dataset's shape and dtype, without preparing the dataset."""
  name, _, variant = dataset.name.partition("/")
  if name == "mnist1d":
    return jnp.zeros((2, 40, 1))
  if name == "adding_problem":
    return jnp.zeros((2, int(variant[1:]), 2))
  if name == "copy_memory":
    return jnp.zeros((2, int(variant[1:]) + 20), jnp.int32)
  if name in ("python_reference", "tiny_shakespeare"):
    return jnp.zeros((2, dataset.seq_len), jnp.int32)
  return jnp.zeros((2, *IMAGE_SHAPES[name]))


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

