"""MNIST-1D (Greydanus & Kobak, 2020): a TFDS builder generating it offline with the `mnist1d`
package, and its batches.

Train and test are the paper's (its default arguments: 4000 / 1000 signals of length 40, 10
classes, seed 42); validation is 1000 more signals made the same way from another seed (43), so
that model selection never reads the test split and the training set stays the paper's.
"""
import numpy as np
import tensorflow_datasets as tfds

from train.data.spec import DatasetSpec, OfflineBuilder, fixed_shape, register

LENGTH = 40  # get_dataset_args().final_seq_length; a constant, so reading needs no mnist1d import
VALIDATION_SEED = 43  # the paper's data uses seed 42


class Mnist1d(OfflineBuilder):
  """MNIST-1D: digit templates turned into 1-D signals (padding, shear, translation, noise)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Paper defaults: 4000/1000 split, length 40, seed 42.",
                   "1.1.0": "A validation split: the test part of the same generator, seed 43."}

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(LENGTH,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("x", "label"),
        homepage="https://github.com/greydanus/mnist1d",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated, nothing to download
    from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415  (slow to import)
    args = get_dataset_args()
    assert args.final_seq_length == LENGTH, args.final_seq_length
    data = make_dataset(args)
    args.seed = VALIDATION_SEED
    held_out = make_dataset(args)
    return {
        "train": self._generate_examples(data["x"], data["y"]),
        "validation": self._generate_examples(held_out["x_test"], held_out["y_test"]),
        "test": self._generate_examples(data["x_test"], data["y_test"]),
    }

  def _generate_examples(self, xs, ys):
    for i, (x, y) in enumerate(zip(xs, ys)):
      yield i, {"x": x.astype(np.float32), "label": int(y)}


def signal_batch(records, info):
  del info
  return {"x": records["x"].astype(np.float32)[..., None],  # (B, L) -> (B, L, channels=1)
          "label": records["label"].astype(np.int32)}


register("mnist1d", DatasetSpec("classify", signal_batch, fixed_shape((LENGTH, 1)), ("x", "label")))
