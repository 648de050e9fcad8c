"""The offline 2-D datasets (scikit-learn's digits, generated shapes), the fully convolutional
ConvNet, training on one dataset and testing on another (dataset.test_name), and the 2-D tools
(feature maps, the translation analysis) on a tiny run."""
import json
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.analysis import cnn_claims, feature_maps
from nets.cnn import ConvNet
from train import data
from train.config import ConfigError
from train.data import shapes
from train.loop import train_and_evaluate


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
  """digits, shapes/top and shapes/bottom prepared once (a few seconds)."""
  path = str(tmp_path_factory.mktemp("tfds_images"))
  for name in ("digits", "shapes/top", "shapes/bottom"):
    tfds.builder(name, data_dir=path).download_and_prepare()
  return path


def split_arrays(name, data_dir):
  out = {}
  for split in ("train", "validation", "test"):
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    out[split] = (np.stack([source[i]["image"] for i in range(len(source))]),
                  np.array([source[i]["label"] for i in range(len(source))]))
  return out


def test_digits_is_a_fixed_stratified_partition_of_sklearns_digits(image_dir):
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  splits = split_arrays("digits", image_dir)
  assert {k: len(v[1]) for k, v in splits.items()} == {"train": 1077, "validation": 360,
                                                        "test": 360}
  images, labels = load_digits(return_X_y=True)
  ours = np.concatenate([x.reshape(len(x), -1) for x, _ in splits.values()])
  # Disjoint and complete: the three splits together are load_digits() once, image for image.
  np.testing.assert_array_equal(np.unique(ours, axis=0, return_counts=True)[1],
                                np.unique(images.astype(np.uint8), axis=0, return_counts=True)[1])
  share = np.bincount(labels) / len(labels)
  for _, y in splits.values():  # stratified: every class within one example of its share
    assert np.all(np.abs(np.bincount(y, minlength=10) - share * len(y)) <= 1)
  _, test = train_test_split(np.arange(len(labels)), test_size=360, stratify=labels, random_state=0)
  rows = lambda x: x[np.lexsort(x.T)]  # the same images, in any order (TFDS shuffles on writing)
  np.testing.assert_array_equal(rows(splits["test"][0].reshape(360, -1)), rows(images[test]))


def test_shapes_are_deterministic_disjoint_and_bottom_is_top_moved_down(image_dir):
  np.testing.assert_array_equal(*(shapes.generate(64, 5, shapes.REGIONS["top"])[0] for _ in "ab"))
  top, bottom = split_arrays("shapes/top", image_dir), split_arrays("shapes/bottom", image_dir)
  for split, (x, y) in top.items():
    assert x.shape == (shapes.SPLITS[split][0], 32, 32, 1) and x.dtype == np.uint8
    assert set(np.unique(y)) == set(range(len(shapes.CLASSES)))
    np.testing.assert_array_equal(np.roll(x, 16, axis=1), bottom[split][0])
    np.testing.assert_array_equal(y, bottom[split][1])
  rows = [x.reshape(len(x), -1) for x, _ in top.values()]
  assert len(np.unique(np.concatenate(rows), axis=0)) == sum(map(len, rows))  # splits disjoint


def test_shapes_stay_in_their_half():
  """Without noise and background, every lit pixel of a top (bottom) image is in rows 0-15
  (16-31), and anywhere's shapes reach both halves."""
  rng = np.random.default_rng(0)
  n = 500
  label, r = rng.integers(0, 5, n), rng.uniform(*shapes.RADIUS, n)
  for name, (lo, hi) in shapes.REGIONS.items():
    cy = lo + r + rng.uniform(size=n) * (hi - lo - 2 * r)
    y, x = np.mgrid[:32, :32] + 0.5
    inside = shapes.masks(label, y - cy[:, None, None], x - 16, r[:, None, None])
    lit_rows = np.nonzero(inside.any(axis=(0, 2)))[0]
    assert lit_rows.min() >= lo and lit_rows.max() < hi, name
    assert inside.reshape(n, -1).any(1).all()  # no shape is empty


def test_global_pooling_makes_the_convnet_blind_to_where():
  """A blob on a zero background (zero biases at init: the background's features are 0, as the
  padding is) moved down by 16 rows, a multiple of the 8x pooling, and far enough from the edges
  that no feature of it is cut off: the fully convolutional net gives the same logits, the one
  with a dense head does not."""
  x = np.zeros((2, 48, 48, 1), np.float32)
  x[0, 10:15, 20:25] = 1.0
  x[1, 26:31, 20:25] = 1.0
  for global_pool, same in (("max", True), ("avg", True), ("none", False)):
    model = ConvNet(num_outputs=5, features=(4, 8, 8), kernel_size=3, pool="max",
                    global_pool=global_pool, hidden=(8,))
    variables = model.init(jax.random.PRNGKey(0), x)
    logits = np.asarray(model.apply(variables, x))
    assert np.allclose(logits[0], logits[1], atol=1e-6) == same, global_pool


def tiny(config, data_dir, **overrides):
  config.dataset.data_dir = data_dir
  config.num_steps, config.log_every, config.eval_every = 20, 10, 10
  config.batch_size, config.checkpoint.every = 32, 10
  config.update_from_flattened_dict(overrides)
  return config


@pytest.fixture(scope="module")
def translation_run(image_dir, tmp_path_factory):
  from experiments import shapes_translation

  workdir = str(tmp_path_factory.mktemp("runs") / "seed=0")
  config = tiny(shapes_translation.get_config(), image_dir, **{"model.features": (4, 8),
                                                               "model.hidden": (8,)})
  return workdir, train_and_evaluate(config, workdir)


@pytest.mark.slow  # a training run or two: `make test-slow`
def test_a_run_reports_the_test_split_of_dataset_test_name(translation_run):
  workdir, results = translation_run
  assert results["splits"] == {"train": "train", "validation": "validation",
                               "test": "shapes/bottom:test"}
  table = cnn_claims.translation(os.path.dirname(workdir), os.path.dirname(workdir), shifts=(0, 16))
  (row,) = table.values()
  # The run's own test split is shapes/bottom: the analysis's bottom is the same number, and
  # bottom is top rolled by 16 rows; top is the unrolled top split.
  assert row["bottom"] == pytest.approx(results["final"]["accuracy"], abs=1e-6)
  assert row["rolled"] == [pytest.approx(row["top"]), pytest.approx(row["bottom"])]


def test_permuted_images_move_whole_pixels_and_are_augmented_first(image_dir):
  """config.dataset.permute_positions on digits: one order of the 8 x 8 pixels for every split;
  with augmentation an image is cropped and flipped as it is, then its pixels permuted."""
  from experiments import digits_cnn

  config = lambda **overrides: tiny(digits_cnn.get_config(), image_dir, **overrides)
  order = data.position_order(config(**{"dataset.permute_positions": 5}).dataset)
  assert sorted(order.tolist()) == list(range(64)) and (order != np.arange(64)).any()
  ids = np.arange(20)
  for role in data.ROLES:
    got, want = (data.reader(config(**{"dataset.permute_positions": p}).dataset, role)(ids)["x"]
                 for p in (5, -1))
    np.testing.assert_array_equal(got, want.reshape(20, 64, 1)[:, order].reshape(20, 8, 8, 1))
  batches = {}
  for p in (5, -1):
    augmented = config(**{"dataset.augment": True, "dataset.permute_positions": p})
    batches[p] = next(data.train_iterator(augmented, data.reader(augmented.dataset, "train")))
  np.testing.assert_array_equal(batches[5]["x"], data.permute_positions(batches[-1], order)["x"])


def test_test_name_must_match_the_inputs_and_classes(image_dir, tmp_path):
  from experiments import shapes_translation

  config = tiny(shapes_translation.get_config(), image_dir, **{"dataset.test_name": "digits"})
  with pytest.raises(ConfigError, match="test_name='digits' has inputs"):
    train_and_evaluate(config, str(tmp_path / "run"))
  config.dataset.test_name = "shapes/middle"
  with pytest.raises(ConfigError, match="unknown config.dataset.test_name 'shapes/middle'"):
    data.check_name(config.dataset)


@pytest.mark.slow  # a training run or two: `make test-slow`
def test_feature_maps_shapes_receptive_fields_and_patches(translation_run, tmp_path):
  workdir, _ = translation_run
  out = tmp_path / "feature_maps"
  result = feature_maps.analyse(workdir, example=3, role="validation", out=str(out))
  # conv 3x3 -> 32x32x4 sees 3x3; pool 2, conv 3x3 -> 16x16x8 sees 3 + 1 + 2 * 2 = 8x8.
  assert [(tuple(l["shape"]), l["size"], l["jump"]) for l in result["layers"]] == [
      ((32, 32, 4), 3, 1), ((16, 16, 8), 8, 2)]
  for suffix in ("kernels.png", "maps.png", "top.png", "layers.json"):
    assert os.path.getsize(out / f"seed=0_{suffix}") > 0
  assert "| block1 | 3x3 | 1 | SAME | 16x16x8 | 8x8 |" in feature_maps.readme_blocks(
      str(tmp_path))["feature_maps"]
  image = -np.arange(32 * 32, dtype=np.float32).reshape(32, 32, 1)
  first, second = (feature_maps.Layer(**l) for l in result["layers"])
  np.testing.assert_array_equal(feature_maps.patch(image, first, 5, 9), image[4:7, 8:11, 0])
  # Block 1's position (2, 3) sees input rows 2*2-3 .. +8, i.e. 1..8, and columns 3..10.
  np.testing.assert_array_equal(feature_maps.patch(image, second, 2, 3), image[1:9, 3:11, 0])
  corner = feature_maps.patch(image, second, 0, 0)  # off the image: filled with its minimum
  assert (corner[:3] == image.min()).all() and corner[3, 3] == image[0, 0, 0]
  with open(out / "seed=0_layers.json") as f:
    assert json.load(f)["dataset"] == "shapes/top"  # validation: the training distribution
