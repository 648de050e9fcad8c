"""Generated shapes: 32 x 32 grey images of one circle, square, triangle, cross or diamond each, of
random size, position and brightness, on a random background with Gaussian noise. Generated
offline, deterministic (one seed per split), so every 2-D claim of the lecture runs anywhere.

The builder config says where the shapes may appear: `shapes/anywhere`, `shapes/top` (inside the
top 16 rows) or `shapes/bottom` (inside the bottom 16 rows). All configs draw from the same seeds,
so `shapes/bottom` is `shapes/top` rolled down by exactly 16 rows, image for image (the same
shape, size, column, brightness and noise): train a model on `shapes/top` and test it on
`shapes/bottom` (config.dataset.test_name), and the only change it meets is the translation.

`shape_position` asks the other question of the same images: WHERE the shape is (the quadrant of
its centre, 4 classes), not what it is (see ShapePosition).
"""
import numpy as np
import tensorflow_datasets as tfds

from train.data.images import image_dataset
from train.data.spec import OfflineBuilder, register

SIZE = 32
CLASSES = ("circle", "square", "triangle", "cross", "diamond")
REGIONS = {"anywhere": (0, SIZE), "top": (0, SIZE // 2), "bottom": (SIZE // 2, SIZE)}  # rows
SPLITS = {"train": (3000, 0), "validation": (600, 1), "test": (1000, 2)}  # examples, seed
RADIUS = (3.0, 7.0)  # half the shape's width in pixels: 6 to 14 pixels across
NOISE = 0.08  # std of the Gaussian pixel noise (pixels in [0, 1])
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")  # shape_position's classes
MARGIN = 1.0  # shape_position: pixels between a kept centre and either midline


def masks(label, dy, dx, r):
  """Where each shape lies, (N, H, W) bool, from the offsets (dy, dx) to its centre and its
  half-width r (all (N, 1, 1) or (N, H, W))."""
  ady, adx = np.abs(dy), np.abs(dx)
  shapes = [
      dy**2 + dx**2 <= r**2,  # circle
      np.maximum(ady, adx) <= 0.8 * r,  # square, about the circle's area
      (ady <= r) & (adx <= (dy + r) / 2),  # triangle, apex up
      ((adx <= r / 3) & (ady <= r)) | ((ady <= r / 3) & (adx <= r)),  # cross
      ady + adx <= r,  # diamond
  ]
  return np.choose(label[:, None, None], shapes)


def draw(n: int, seed: int, rows: tuple[int, int]):
  """(images (n, 32, 32, 1) uint8, labels (n,), centres (n, 2): row and column in pixels, 0 at
  the top left): shapes lying wholly within `rows`. A centre is the middle of its shape's
  bounding box (for the triangle too)."""
  rng = np.random.default_rng(seed)
  label = rng.integers(0, len(CLASSES), n)
  r = rng.uniform(*RADIUS, n)
  u = rng.uniform(size=(n, 2))  # the position within the allowed area, as fractions
  brightness = rng.uniform(0.5, 1.0, n)
  background = rng.uniform(0.0, 0.3, n)
  lo, hi = rows
  noise = np.roll(rng.normal(0.0, NOISE, (n, SIZE, SIZE)), lo, axis=1)  # moves with the shapes
  cy = lo + r + u[:, 0] * (hi - lo - 2 * r)
  cx = r + u[:, 1] * (SIZE - 2 * r)
  y, x = np.mgrid[:SIZE, :SIZE] + 0.5  # pixel centres
  col = lambda v: v[:, None, None]
  inside = masks(label, y - col(cy), x - col(cx), col(r))
  image = col(background) + col(brightness - background) * inside + noise
  images = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)[..., None]
  return images, label, np.stack([cy, cx], axis=1)


def generate(n: int, seed: int, rows: tuple[int, int]):
  """(images (n, 32, 32, 1) uint8, labels (n,)): shapes lying wholly within `rows`."""
  return draw(n, seed, rows)[:2]


class Shapes(OfflineBuilder):
  """One shape an image (5 classes); the config sets the rows it may appear in."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "5 shapes, 32 x 32, 3000/600/1000, seeds 0/1/2 for every region."}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name, description=f"shapes in rows {lo}-{hi - 1}")
                     for name, (lo, hi) in REGIONS.items()]

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(SIZE, SIZE, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=CLASSES),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated, nothing to download
    return {split: self._generate_examples(n, seed) for split, (n, seed) in SPLITS.items()}

  def _generate_examples(self, n, seed):
    images, labels = generate(n, seed, REGIONS[self.builder_config.name])
    for i in range(n):
      yield i, {"image": images[i], "label": int(labels[i])}


def quadrants(centres, margin: float = MARGIN):
  """(quadrant (n,): 0 top left, 1 top right, 2 bottom left, 3 bottom right; kept (n,) bool: the
  centre lies at least `margin` pixels from both midlines) of centres (n, 2) (row, column)."""
  below, right = (centres >= SIZE / 2).T
  kept = np.all(np.abs(centres - SIZE / 2) >= margin, axis=1)
  return 2 * below + right, kept


class ShapePosition(OfflineBuilder):
  """WHERE the shape is: the quadrant of its centre (4 classes), on shapes/anywhere's images.

  A builder of its own rather than a config of Shapes: its label (and so its classes) differs,
  and the Shapes configs, their data and version stay as they were. Its images are
  shapes/anywhere's, bit for bit (the same `draw`, seeds and split sizes; each example's key is
  its index there), less those whose centre lies within MARGIN = 1 pixel of a midline (17-19%):
  2,483 / 484 / 834 remain. Without the margin the label would be a guess for a shape
  centred on a midline, whose rendering barely moves when its centre crosses it. With it, the
  label can be read off the noise-free image: the middle of the rows (columns) a shape lights is
  within 0.92 pixel of its centre's (the triangle's apex is thinner than a pixel; 0.5 for the
  other shapes), so on the same side of each midline (tests/test_images.py). The shape's class,
  the other dataset's label, is kept as `shape` (not an input).
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "shapes/anywhere's images whose centre is >= 1 pixel from both "
                            "midlines, labelled by the quadrant of the centre; seeds 0/1/2."}

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(SIZE, SIZE, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=QUADRANTS),
            "shape": tfds.features.ClassLabel(names=CLASSES),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated, nothing to download
    return {split: self._generate_examples(n, seed) for split, (n, seed) in SPLITS.items()}

  def _generate_examples(self, n, seed):
    images, labels, centres = draw(n, seed, REGIONS["anywhere"])
    quadrant, kept = quadrants(centres)
    for i in np.flatnonzero(kept):
      yield int(i), {"image": images[i], "label": int(quadrant[i]), "shape": int(labels[i])}


# The mean and std of shapes/anywhere's training pixels (in [0, 1]); every region shares them, and
# shape_position (a subset of the same images) too, so a pixel is the same input to both.
register("shapes", image_dataset((SIZE, SIZE, 1), (0.1932,), (0.1797,), splits=tuple(SPLITS)))
register("shape_position", image_dataset((SIZE, SIZE, 1), (0.1932,), (0.1797,),
                                         splits=tuple(SPLITS)))
