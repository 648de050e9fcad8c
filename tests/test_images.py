"""The offline 2-D datasets (scikit-learn's digits, generated shapes and their quadrants), the
fully convolutional ConvNet and what padding shows it, training on one dataset and testing on
another (dataset.test_name), and the 2-D tools (feature maps, the translation analysis) on a tiny
run."""
import hashlib
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
  """digits, shapes/top, shapes/bottom and shape_position prepared once (a few seconds)."""
  path = str(tmp_path_factory.mktemp("tfds_images"))
  for name in ("digits", "shapes/top", "shapes/bottom", "shape_position"):
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


# sha256 of each shapes config's images and labels (generate's output, every split), recorded
# before shape_position was added (2026-11-27): its `draw` must not change them.
SHAPES_SHA256 = {
    "anywhere/train": "e4954a27eea29da573f0f8eb9510319cf0c1b48be2d0e28e2ef07d8b369bb611",
    "anywhere/validation": "18d85732a7a08d32073e001d8603021d9e7c0912abdaddffe221b61951c20f27",
    "anywhere/test": "39b507b601deccbcca2ed0d736c87e5ecfda234176f687f43137365e08a333d6",
    "top/train": "ce74c8228390490d21a5435fcc1db72ec1a72f6bfcddde97d719dd9bd428300d",
    "top/validation": "9281210a2b38936ee59fd25711d17b3f0e1e0c27c42c155dc191555f21aaf64a",
    "top/test": "f0d562e8bce81c4f7035ac8d4dac991a7b2499442a8f412fd3cb90867da29779",
    "bottom/train": "5cf5289ae89e7ccad05acfbe1b77095407c924bd5031012272b7e9b4d1201aa9",
    "bottom/validation": "ed071902b65840bfc974559335d7c22a86988dafc336168584565be9468b3e1b",
    "bottom/test": "b3944bed511b18224bcd64e9969ced058f1ef6a2355b214b4f4d05571c556f86",
}


def test_the_shapes_configs_data_is_unchanged():
  for name, rows in shapes.REGIONS.items():
    for split, (n, seed) in shapes.SPLITS.items():
      x, y = shapes.generate(n, seed, rows)
      assert hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest() == SHAPES_SHA256[
          f"{name}/{split}"], (name, split)


def test_shape_position_is_anywheres_images_labelled_by_the_quadrant_of_the_centre(image_dir):
  """Every example is shapes/anywhere's image of the same index (`generate` is `draw` less the
  centres), its label the quadrant of the shape's centre; exactly the centres within a pixel of a
  midline are left out; deterministic."""
  first, again = (shapes.draw(64, 5, shapes.REGIONS["anywhere"]) for _ in "ab")
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  prepared = split_arrays("shape_position", image_dir)
  for split, (n, seed) in shapes.SPLITS.items():
    images, labels, centres = shapes.draw(n, seed, shapes.REGIONS["anywhere"])
    examples = list(shapes.ShapePosition(data_dir="/nonexistent")._generate_examples(n, seed))
    keys = np.array([i for i, _ in examples])
    near = np.any(np.abs(centres - 16) < shapes.MARGIN, axis=1)  # to a midline
    np.testing.assert_array_equal(keys, np.flatnonzero(~near))
    cy, cx = centres[keys].T
    quadrant = np.array([e["label"] for _, e in examples])
    np.testing.assert_array_equal(quadrant, 2 * (cy >= 16) + (cx >= 16))
    assert set(quadrant) == {0, 1, 2, 3}
    np.testing.assert_array_equal(np.stack([e["image"] for _, e in examples]), images[keys])
    np.testing.assert_array_equal([e["shape"] for _, e in examples], labels[keys])
    # The prepared split holds the same examples (in TFDS's order).
    x, y = prepared[split]
    assert len(y) == len(keys) == {"train": 2483, "validation": 484, "test": 834}[split]
    by_image = {images[i].tobytes(): q for i, q in zip(keys, quadrant)}
    assert [by_image[image.tobytes()] for image in x] == list(y)


def test_a_quadrant_can_be_read_off_the_noise_free_image():
  """With the centre at least MARGIN from both midlines, the middle of the rows (and columns) a
  shape lights lies on the centre's side of the midline, for every shape: the label is not a
  guess."""
  rng = np.random.default_rng(0)
  n = 4000
  label, r = rng.integers(0, 5, n), rng.uniform(*shapes.RADIUS, n)
  centres = r[:, None] + rng.uniform(size=(n, 2)) * (32 - 2 * r[:, None])
  quadrant, kept = shapes.quadrants(centres)
  y, x = np.mgrid[:32, :32] + 0.5
  inside = shapes.masks(label, y - centres[:, :1, None], x - centres[:, 1:, None],
                        r[:, None, None])

  def middle(lit_NL):  # halfway between the first lit pixel's top edge and the last's bottom
    return (lit_NL.argmax(1) + 32 - lit_NL[:, ::-1].argmax(1)) / 2

  rows, cols = middle(inside.any(2)), middle(inside.any(1))
  assert np.abs(rows - centres[:, 0]).max() < shapes.MARGIN  # the triangle's: 0.92
  assert np.abs(cols - centres[:, 1]).max() < shapes.MARGIN
  np.testing.assert_array_equal(quadrant[kept], (2 * (rows >= 16) + (cols >= 16))[kept])
  assert 0.75 < kept.mean() < 0.9


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


def test_circular_padding_makes_global_pooling_blind_to_the_quadrant():
  """With circular padding the conv blocks commute with rolling the image by a multiple of the
  8x pooling, so a global pool gives an image and its rolls by 16 rows and columns (a shape moved
  to each other quadrant) the same logits; zero ('SAME') padding shows the net the borders."""
  x = np.random.default_rng(0).normal(size=(1, 32, 32, 1)).astype(np.float32)
  moved = np.concatenate([x, np.roll(x, 16, axis=1), np.roll(x, 16, axis=2),
                          np.roll(x, (16, 16), axis=(1, 2))])
  for padding, global_pool, same in (("CIRCULAR", "max", True), ("CIRCULAR", "avg", True),
                                     ("SAME", "max", False)):
    model = ConvNet(num_outputs=4, features=(4, 8, 8), kernel_size=3, padding=padding,
                    pool="max", global_pool=global_pool, hidden=(8,))
    variables = model.init(jax.random.PRNGKey(0), moved)
    logits = np.asarray(model.apply(variables, moved))
    assert np.allclose(logits, logits[:1], atol=1e-5) == same, (padding, global_pool)


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
