"""A new dataset added the way docs/extending.md says: one module with a TFDS builder, a batch
function and a `register` call; then an experiment trains on it with no other file changed."""
import importlib.util
import textwrap

import numpy as np
import pytest

from tests.test_reproduce import chance
from train import data
from train.loop import train_and_evaluate

MODULE = textwrap.dedent('''
    """Two Gaussian blobs in 2-D: a toy classification dataset, generated offline."""
    import numpy as np
    import tensorflow_datasets as tfds

    from train.data.spec import DatasetSpec, OfflineBuilder, fixed_shape, register


    class ToyBlobs(OfflineBuilder):
      VERSION = tfds.core.Version("1.0.0")

      def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "point": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=2)}))

      def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples(400, 0),
                "validation": self._generate_examples(100, 1),
                "test": self._generate_examples(100, 2)}

      def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 2, n)
        points = rng.normal(size=(n, 2)) + 3.0 * labels[:, None]
        for i in range(n):
          yield i, {"point": points[i].astype(np.float32), "label": int(labels[i])}


    def blob_batch(records, info):
      del info
      return {"x": records["point"], "label": records["label"].astype(np.int32)}


    register("toy_blobs", DatasetSpec("classify", blob_batch, fixed_shape((2,)),
                                      ("point", "label")))
''')


@pytest.fixture
def toy_dataset(tmp_path):
  path = tmp_path / "toy_blobs.py"
  path.write_text(MODULE)
  spec = importlib.util.spec_from_file_location("train.data.toy_blobs", path)
  spec.loader.exec_module(importlib.util.module_from_spec(spec))
  yield "toy_blobs"
  del data.DATASETS["toy_blobs"]


def test_a_new_dataset_module_is_all_it_takes(toy_dataset, tmp_path, tiny_config):
  assert data.is_generated(toy_dataset)  # our builder: prepared offline, never downloaded
  config = tiny_config("mnist1d_mlp", num_steps=60, eval_every=20, **{
      "dataset.name": toy_dataset, "dataset.data_dir": str(tmp_path / "tfds"),
      "model.num_outputs": 2, "checkpoint.every": 20, "batch_size": 50, "eval_batch_size": 50})
  results = train_and_evaluate(config, str(tmp_path / "run"))
  assert results["splits"] == {"train": "train", "validation": "validation", "test": "test"}
  assert results["final"]["accuracy"] > 0.9  # the blobs are 3 sigma apart
  assert chance(config, "accuracy") == 0.5  # the registry's check knows it, from the spec
  x_shape, dtype = data.spec_of(toy_dataset).input_shape(config.dataset)
  assert x_shape == (2,) and dtype == np.float32


def test_a_name_that_names_no_builder_is_refused_by_register(tmp_path):
  """It passed validation, then the run failed at load ("Dataset toy_point not found")."""
  path = tmp_path / "toy_points.py"
  path.write_text(MODULE.replace("ToyBlobs", "ToyPoints").replace('register("toy_blobs"',
                                                                  'register("toy_point"'))
  spec = importlib.util.spec_from_file_location("train.data.toy_points", path)
  with pytest.raises(ValueError, match=r"^register\('toy_point'\): TFDS has no builder "
                     r"'toy_point' \(did you mean 'toy_points'\?\); it names a builder after its "
                     r"class in snake_case \(class SineWaves: 'sine_waves'\)$"):
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
  assert "toy_point" not in data.DATASETS
