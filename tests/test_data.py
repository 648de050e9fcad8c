import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.conftest import load_config
from train import data
from train.config import ConfigError


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_mnist1d_builder_has_the_paper_sizes(data_dir):
  builder = tfds.builder("mnist1d", data_dir=data_dir)
  assert builder.info.splits["train"].num_examples == 4000
  assert builder.info.splits["test"].num_examples == 1000
  source = tfds.data_source("mnist1d", split="test", data_dir=data_dir, download=False)
  assert source[0]["x"].shape == (40,) and source[0]["x"].dtype == np.float32


def test_batches_are_a_function_of_seed_and_step(tiny_config):
  config = tiny_config(batch_size=1000)
  a, b = take(data.train_iterator(config), 6), take(data.train_iterator(config), 6)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["x"], y["x"])
  assert a[0]["x"].shape == (1000, 40, 1) and a[0]["label"].dtype == np.int32
  # 4 batches are one epoch: each epoch holds every example once, in a new order.
  first = np.concatenate([bt["label"] for bt in a[:4]])
  second = np.concatenate([bt["label"] for bt in a[4:]] + [bt["label"] for bt in take(data.train_iterator(config), 8)[6:]])
  assert np.bincount(first).tolist() == np.bincount(second).tolist()
  assert not np.array_equal(a[0]["x"], a[4]["x"][:1000])
  other = take(data.train_iterator(tiny_config(batch_size=1000, seed=1)), 1)[0]
  assert not np.array_equal(a[0]["x"], other["x"])


def test_iterator_state_restores_the_position(tiny_config):
  config = tiny_config(batch_size=64)
  it = data.train_iterator(config)
  take(it, 70)  # past the first epoch
  state = it.get_state()
  expected = take(it, 3)
  fresh = data.train_iterator(config)
  fresh.set_state(state)
  for x, y in zip(expected, take(fresh, 3)):
    np.testing.assert_array_equal(x["x"], y["x"])


def test_cache_and_streaming_give_the_same_batches(tiny_config):
  cached = take(data.train_iterator(tiny_config(batch_size=32)), 2)
  streamed = take(data.train_iterator(tiny_config(batch_size=32, **{"dataset.cache": False})), 2)
  for x, y in zip(cached, streamed):
    np.testing.assert_array_equal(x["x"], y["x"])


def test_eval_batches_cover_the_split_once_with_a_mask(tiny_config):
  batches = list(data.eval_batches(tiny_config(eval_batch_size=300))())
  assert [b["x"].shape[0] for b in batches] == [300] * 4
  assert sum(b["mask"].sum() for b in batches) == 1000
  assert not batches[-1]["mask"][100:].any()


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_catalog_datasets_load_by_name(name, shape, tmp_path):
  """The real TFDS path, with TFDS's mock data (this machine cannot download)."""
  config = load_config("cifar10_resnet18" if name == "cifar10" else "mnist_cnn")
  config.dataset.data_dir = str(tmp_path)
  config.batch_size = 8
  with tfds.testing.mock_data(num_examples=20):
    batch = next(data.train_iterator(config))
    eval_batch = next(data.eval_batches(config)())
  assert batch["x"].shape == (8, *shape) and batch["x"].dtype == np.float32
  assert eval_batch["x"].shape == (config.eval_batch_size, *shape)
  assert abs(float(batch["x"].mean())) < 3  # scaled and normalised, not raw 0..255


def test_augment_keeps_shape_and_changes_pixels():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 32, 32, 3)).astype(np.float32)
  out = data.augment({"x": x, "label": np.zeros(16, np.int32)}, np.random.default_rng(1))["x"]
  assert out.shape == x.shape and out.dtype == x.dtype and not np.array_equal(out, x)


def test_missing_dataset_says_how_to_prepare_it(tmp_path):
  config = load_config("mnist_cnn")
  config.dataset.data_dir = str(tmp_path)
  config.dataset.download = False
  with pytest.raises(ConfigError, match="cannot load 'mnist' split 'train'.*download=True"):
    data.train_iterator(config)
