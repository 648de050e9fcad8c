"""Image classification from the TFDS catalog (a download: `tfds build NAME`): MNIST, Fashion-MNIST
and CIFAR-10. Pixels are scaled to [0, 1] and normalised per channel with the training set's
mean and std. None of them has a validation split: the last 10% of train is one, fixed.
`image_dataset` is also the spec of our offline image builders (digits.py, shapes.py).
"""
import numpy as np

from train.data.spec import DatasetSpec, fixed_shape, register

SPLITS = ("train[:90%]", "train[90%:]", "test")


def image_batch(mean, std, max_value=255):
  mean, std = np.float32(mean), np.float32(std)

  def make(records, info):
    del info
    return {"x": (records["image"].astype(np.float32) / max_value - mean) / std,
            "label": records["label"].astype(np.int32)}

  return make


def image_dataset(shape, mean, std, max_value=255, splits=SPLITS) -> DatasetSpec:
  """Pixels (0..max_value) scaled to [0, 1], then normalised with the training set's mean, std."""
  return DatasetSpec("classify", image_batch(mean, std, max_value), fixed_shape(shape),
                     ("image", "label"), images=True, splits=splits)


register("mnist", image_dataset((28, 28, 1), (0.1307,), (0.3081,)))
register("fashion_mnist", image_dataset((28, 28, 1), (0.2860,), (0.3530,)))
register("cifar10", image_dataset((32, 32, 3), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)))
