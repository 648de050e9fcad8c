"""scikit-learn's handwritten digits (UCI optdigits test set): 1,797 real 8 x 8 images of the digits
0-9, 16 grey levels, shipped inside scikit-learn, so a 2-D dataset needs no download.

A fixed, stratified split (`train_test_split`, random_state 0): 1,077 train, 360 validation,
360 test images, every class in the same proportion in each. scikit-learn is imported only when
the dataset is first prepared.
"""
import numpy as np
import tensorflow_datasets as tfds

from train.data.images import image_dataset
from train.data.spec import OfflineBuilder, register

SHAPE = (8, 8, 1)
NUM_VALIDATION = NUM_TEST = 360
SPLIT_SEED = 0
LEVELS = 16  # pixel values are 0..16


class Digits(OfflineBuilder):
  """sklearn.datasets.load_digits(), split once into train / validation / test (stratified)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Stratified 1077/360/360 split, random_state 0."}

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=SHAPE, dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # shipped with scikit-learn, nothing to download
    from sklearn.datasets import load_digits  # noqa: PLC0415  (only this dataset needs sklearn)
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    images, labels = load_digits(return_X_y=True)
    ids = np.arange(len(labels))
    rest, test = train_test_split(ids, test_size=NUM_TEST, stratify=labels,
                                  random_state=SPLIT_SEED)
    train, validation = train_test_split(rest, test_size=NUM_VALIDATION, stratify=labels[rest],
                                         random_state=SPLIT_SEED)
    images = images.reshape(-1, *SHAPE).astype(np.uint8)
    return {split: self._generate_examples(images, labels, np.sort(split_ids))
            for split, split_ids in (("train", train), ("validation", validation), ("test", test))}

  def _generate_examples(self, images, labels, ids):
    for i in ids:  # keyed by the index in load_digits(), so a split's examples can be traced back
      yield int(i), {"image": images[i], "label": int(labels[i])}


# The mean and std of the training split's pixels (scaled to [0, 1]).
register("digits", image_dataset(SHAPE, (0.3053,), (0.3760,), max_value=LEVELS,
                                 splits=("train", "validation", "test")))
